// Package scaffold writes the files of a new Ferry service module, and on
// regeneration keeps Ferry's own files current without touching the user's.
//
// # The regeneration rule
//
// Files come in two kinds. The user's files (service.go, service_test.go,
// ferry.yaml, go.mod, README.md, .gitignore) are written once, when the
// project is created, and never again. Ferry's files (main.go, Makefile,
// Dockerfile, .dockerignore, k8s/*.yaml) start with a line holding [Marker].
//
// Generate with Update set rewrites a file only if both hold:
//
//  1. its first line still holds [Marker], and
//  2. its content hashes to what the manifest ([ManifestFile]) recorded
//     when ferry new last wrote it, so the user has not edited it.
//
// Everything else is kept: a file without the marker (the user's from the
// start, or a generated file whose marker line the user deleted to take it
// over), an edited generated file, a file ferry new did not write. A file
// the manifest knows but that is gone was deleted by the user and is not
// recreated; a file the manifest does not know and that is missing (new in
// this version of the templates) is created. Files are never deleted.
// Line endings are normalised before hashing, so a checkout that turned
// LF into CRLF does not count as an edit.
package scaffold
