package iga

import "strings"

// Denied is the error of a refused admission or credential check. Callers
// branch on it (errors.As) to tell a refusal from an infrastructure failure
// and to show the client its reason codes.
type Denied struct {
	Identity string
	Reasons  []Reason
}

// Error is one line for the client: "access denied (code[, code]): message[; message]".
func (d *Denied) Error() string {
	if len(d.Reasons) == 0 {
		return "access denied"
	}
	codes := make([]string, len(d.Reasons))
	messages := make([]string, len(d.Reasons))
	for i, r := range d.Reasons {
		codes[i], messages[i] = r.Code, r.Message
	}
	return "access denied (" + strings.Join(codes, ", ") + "): " + strings.Join(messages, "; ")
}

// Codes returns the reason codes of the refusal, in order.
func (d *Denied) Codes() []string {
	codes := make([]string, len(d.Reasons))
	for i, r := range d.Reasons {
		codes[i] = r.Code
	}
	return codes
}

// Has reports whether the refusal carries the reason code.
func (d *Denied) Has(code string) bool {
	for _, r := range d.Reasons {
		if r.Code == code {
			return true
		}
	}
	return false
}

func deny(identity string, reasons ...Reason) *Denied {
	return &Denied{Identity: identity, Reasons: reasons}
}
