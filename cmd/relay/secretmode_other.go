//go:build !unix

package main

// checkSecretMode and checkPrivateMode are no-ops where file modes do not
// describe who may read a file (Windows: ACLs; the service's data folder
// is protected).
func checkSecretMode(string) error { return nil }

func checkPrivateMode(_, _, _ string) error { return nil }
