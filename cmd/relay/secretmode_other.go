//go:build !unix

package main

// checkSecretMode is a no-op where file modes do not describe who may
// read a file (Windows: ACLs; the service's data folder is protected).
func checkSecretMode(string) error { return nil }
