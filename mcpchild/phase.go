package mcpchild

// Phase is the child's current phase: Status without the cost of building
// one (the tool counts and stderr tail), for a caller that asks per message
// whether the child can serve yet.
func (c *Child) Phase() Phase {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.Phase
}
