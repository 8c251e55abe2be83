// Package admin holds the admin web interface's HTML templates, embedded
// so that a deployment stays one file. The pages are rendered by package
// internal/admin; base.html is the layout every page fills in.
package admin

import "embed"

// FS holds every admin template (*.html).
//
//go:embed *.html
var FS embed.FS
