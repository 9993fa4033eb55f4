package app

import "github.com/tether-dev/tether/mcpchild"

// TEMPORARY until mcpchild gains SetToolFilter and Options.OnCall (in progress).
func setToolFilter(c *mcpchild.Child, allow func(string) bool) {}

func (b *Bridge) chainOnCall(name string, copts *mcpchild.Options) {}

func hiddenTools(s mcpchild.Status) int { return 0 }
