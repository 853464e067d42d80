// Package floors holds no code: its test keeps the package floors of
// DESIGN §12 (cmd ▶ web, proxy ▶ recorder ▶ iga, ca, deploy), so that no
// package imports one above it.
package floors
