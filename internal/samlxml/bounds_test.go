package samlxml

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestCase18_FirstPassBounds checks each bound of the first pass at the
// bound (accepted) and one past it (refused, before the round-trip check
// or any tree is built).
func TestCase18_FirstPassBounds(t *testing.T) {
	t.Parallel()
	attrs := func(n int) string {
		var sb strings.Builder
		for i := range n {
			fmt.Fprintf(&sb, ` a%d=""`, i)
		}
		return sb.String()
	}
	elements := func(n int) string { return "<r>" + strings.Repeat("<a/>", n-1) + "</r>" }
	nested := func(n int) string { return strings.Repeat("<a>", n) + strings.Repeat("</a>", n) }
	tests := []struct {
		name string
		doc  string
		want error
	}{
		{"elements_at_bound", elements(MaxElements), nil},
		{"elements_past_bound", elements(MaxElements + 1), ErrTooManyNodes},
		{"depth_at_bound", nested(MaxDepth), nil},
		{"depth_past_bound", nested(MaxDepth + 1), ErrTooDeep},
		{"element_attributes_at_bound", "<r" + attrs(MaxElementAttributes) + "/>", nil},
		{"element_attributes_past_bound", "<r" + attrs(MaxElementAttributes+1) + "/>", ErrTooManyNodes},
		{"attributes_at_bound", "<r>" + strings.Repeat("<a"+attrs(MaxElementAttributes)+"/>", MaxAttributes/MaxElementAttributes) + "</r>", nil},
		{"attributes_past_bound", "<r x=''>" + strings.Repeat("<a"+attrs(MaxElementAttributes)+"/>", MaxAttributes/MaxElementAttributes) + "</r>", ErrTooManyNodes},
		{"valueless_attributes_count", "<r" + strings.ReplaceAll(attrs(MaxElementAttributes+1), `=""`, "") + "/>", ErrTooManyNodes},
		{"markup_at_bound", `<r a="` + strings.Repeat("v", MaxMarkupBytes-len(`<r a=""></r>`)) + `"></r>`, nil},
		{"markup_past_bound", `<r a="` + strings.Repeat("v", MaxMarkupBytes-len(`<r a=""></r>`)) + `"></r >`, ErrTooManyNodes},
		{"long_name_past_bound", `<r` + strings.Repeat("r", MaxMarkupBytes) + `/>`, ErrTooManyNodes},
		{"long_comment_past_bound", `<r><!--` + strings.Repeat("c", MaxMarkupBytes) + `--></r>`, ErrTooManyNodes},
		{"text_is_not_markup", `<r>` + strings.Repeat("t", MaxMessageBytes-8) + `</r>`, nil},
		{"references_at_bound", "<r>" + strings.Repeat("&amp;", MaxReferences) + "</r>", nil},
		{"references_past_bound", "<r>" + strings.Repeat("&amp;", MaxReferences+1) + "</r>", ErrTooManyNodes},
		{"comments_at_bound", "<r>" + strings.Repeat("<!-- c -->", MaxOtherNodes) + "</r>", nil},
		{"comments_past_bound", "<r>" + strings.Repeat("<!-- c -->", MaxOtherNodes+1) + "</r>", ErrTooManyNodes},
		{"processing_instructions_past_bound", "<r>" + strings.Repeat("<?p x?>", MaxOtherNodes+1) + "</r>", ErrTooManyNodes},
		{"cdata_past_bound", "<r>" + strings.Repeat("<![CDATA[x]]>", MaxOtherNodes+1) + "</r>", ErrTooManyNodes},
		{"duplicate_attribute", `<r a="1" a="2"/>`, ErrDuplicateAttribute},
		{"duplicate_prefixed_attribute", `<r xmlns:p="urn:p" p:a="1" p:a="2"/>`, ErrDuplicateAttribute},
		{"same_local_name_other_prefix", `<r xmlns:p="urn:p" a="1" p:a="2"/>`, nil},
		{"declaration_outside_root", `<!doctype r><r/>`, ErrDTD},
		{"declaration_inside_root", `<r><!x></r>`, ErrMalformed},
		{"lt_in_attribute_value", `<r a="<"/>`, ErrMalformed},
		{"gt_in_attribute_value", `<r a=">" b='/>'/>`, nil},
		{"markup_in_comment_not_counted", "<r><!--" + strings.Repeat("<a>", MaxDepth+5) + "--></r>", nil},
		{"markup_in_cdata_not_counted", "<r><![CDATA[" + strings.Repeat("<a/>", MaxElements+5) + "]]></r>", nil},
		{"unclosed_comment", "<r><!-- </r>", ErrMalformed},
		{"unclosed_tag", `<r a="1"`, ErrMalformed},
		{"end_tag_without_start", `</r>`, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tc.doc))
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("Parse = %v, want %v", err, tc.want)
			}
		})
	}
}

// Metadata has looser bounds on elements: a file of several vendors, or an
// ADFS IdP listing its claim types, has more elements than any message.
func TestParseMetadataLooserElementBound(t *testing.T) {
	t.Parallel()
	doc := []byte("<r>" + strings.Repeat("<a/>", 2*MaxElements) + "</r>")
	if _, err := Parse(doc); !errors.Is(err, ErrTooManyNodes) {
		t.Errorf("Parse = %v, want ErrTooManyNodes", err)
	}
	if _, err := ParseMetadata(doc); err != nil {
		t.Errorf("ParseMetadata = %v", err)
	}
	if _, err := ParseMetadata([]byte(strings.Repeat("<a>", MaxDepth+1) + strings.Repeat("</a>", MaxDepth+1))); !errors.Is(err, ErrTooDeep) {
		t.Errorf("ParseMetadata of a deep document = %v, want ErrTooDeep", err)
	}
}
