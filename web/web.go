// Package web holds the bridge's HTML templates and static files, embedded
// in the binary so that a deployment is one file.
package web

import (
	"embed"
	"html/template"
	"io/fs"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Templates parses every template.
func Templates() (*template.Template, error) {
	return template.ParseFS(templateFS, "templates/*.html")
}

// Static returns the static files (stylesheet) rooted at their directory.
func Static() fs.FS {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return sub
}
