package app

import "github.com/tether-dev/tether/app/config"

// The config package's types that are part of app's own API (State and
// Control carry them), named here too so that a UI or CLI that only talks to
// the engine needs no second import to spell them.
type (
	ServerKind    = config.ServerKind
	ImportSource  = config.ImportSource
	ImportReport  = config.ImportReport
	SourceReport  = config.SourceReport
	SkippedServer = config.SkippedServer
)

const (
	KindStdio = config.KindStdio
	KindHTTP  = config.KindHTTP

	AppClaudeDesktop = config.AppClaudeDesktop
	AppCursor        = config.AppCursor
	AppVSCode        = config.AppVSCode
)
