package mysql

// SetPumpSessions turns the pump on or off for sessions started after.
func SetPumpSessions(on bool) { pumpSessions.Store(on) }
