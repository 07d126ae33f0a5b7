package webadmin

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// APIResponse is the REST API's answer to a request the web admin made (Backend.API).
type APIResponse struct {
	Status   int
	Location string // of a successful POST
	Body     []byte // an XML document, or nothing
}

// The API browser (Configuration > API, as on CMS 2.9's web interface): the REST API's
// collections, their objects and fields, and forms to create, change and delete them, each
// action a request to the REST API itself on behalf of the signed-in administrator, so that
// the page accepts and refuses exactly what the API does.

// xnode is an element of an API answer.
type xnode struct {
	Name     string
	Attrs    []xml.Attr
	Text     string
	Children []*xnode
}

func (n *xnode) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// parseXML reads an API answer into a tree.
func parseXML(b []byte) (*xnode, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	var stack []*xnode
	var root *xnode
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			if root == nil {
				return nil, errors.New("empty document")
			}
			return root, nil
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n := &xnode{Name: t.Name.Local, Attrs: t.Attr}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.Children = append(p.Children, n)
			} else if root == nil {
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].Text += string(t)
			}
		}
	}
}

// apiField is one field of an object as the page shows it: nested elements by their path
// (status/state), attributes other than id as name[attr].
type apiField struct{ Name, Value string }

func flatten(prefix string, n *xnode, out *[]apiField) {
	for _, a := range n.Attrs {
		if a.Name.Local != "id" || prefix != "" {
			*out = append(*out, apiField{prefix + "@" + a.Name.Local, a.Value})
		}
	}
	for _, c := range n.Children {
		name := prefix + c.Name
		if len(c.Children) == 0 && len(c.Attrs) == 0 {
			*out = append(*out, apiField{name, strings.TrimSpace(c.Text)})
			continue
		}
		flatten(name+"/", c, out)
	}
}

// apiFailure is a failureDetails document in words.
func apiFailure(status int, root *xnode) string {
	if root == nil || root.Name != "failureDetails" || len(root.Children) == 0 {
		return fmt.Sprintf("The API answered %d %s.", status, http.StatusText(status))
	}
	f := root.Children[0]
	s := f.Name
	if p := f.attr("parameter"); p != "" {
		s += ": parameter " + p + " (" + f.attr("error") + ")"
	}
	return fmt.Sprintf("The API refused it (%d): %s", status, s)
}

// apiPageSize is the REST API's page (adminapi.PageSize).
const apiPageSize = 20

// apiRow is a row of a list.
type apiRow struct {
	ID     string
	Path   string
	Values []string
}

// apiFormField is a parameter in a form, with its current value.
type apiFormField struct {
	APIParam
	Value string // the current value ("" for a secret)
	IsSet bool   // the object has a value (a secret's is never known)
}

type apiBody struct {
	Groups   []apiGroup
	Path     string // what is shown ("" for nothing)
	Kind     *APIKind
	IsObject bool
	IsNew    bool
	Error    string
	Notice   string

	// a list
	Total     int
	Offset    int
	ShowFrom  int // the rows shown, counted from 1
	ShowTo    int
	PrevPath  string
	NextPath  string
	Filter    string
	Columns   []string
	Rows      []apiRow
	ListPath  string
	CreateURL string

	// an object or a singleton
	Fields   []apiField
	Children []apiLink
	Form     []apiFormField
	Raw      string
}

type apiGroup struct {
	Name  string
	Kinds []apiLink
}

type apiLink struct {
	Title, Path string
	Current     bool
}

func (s *server) apiGroups(current string) []apiGroup {
	var out []apiGroup
	for _, k := range APICatalog {
		if strings.Contains(k.Path, "{id}") {
			continue // reached from an object
		}
		if len(out) == 0 || out[len(out)-1].Name != k.Group {
			out = append(out, apiGroup{Name: k.Group})
		}
		g := &out[len(out)-1]
		g.Kinds = append(g.Kinds, apiLink{Title: k.Title, Path: k.Path, Current: current == k.Path})
	}
	return out
}

// apiPage is GET /admin/configuration/api?path=…[&offset=…&filter=…][&new=1].
func (s *server) apiPage(w http.ResponseWriter, r *http.Request, sess *session) {
	q := r.URL.Query()
	body := apiBody{Path: q.Get("path"), Notice: noticeText(q.Get("done"))}
	code := http.StatusOK
	if body.Path != "" {
		code = s.loadAPI(r.Context(), sess, &body, q)
	}
	t, ok := resolveAPIPath(body.Path)
	current := body.Path
	if ok {
		current = t.kind.Path
	}
	body.Groups = s.apiGroups(current)
	s.render(w, r, code, "api.html", s.page(sess, "configuration", "Configuration: API", body))
}

func noticeText(done string) string {
	switch done {
	case "created":
		return "Created."
	case "saved":
		return "Saved."
	case "deleted":
		return "Deleted."
	}
	return ""
}

// loadAPI fills body for its path; it returns the status of the page.
func (s *server) loadAPI(ctx context.Context, sess *session, body *apiBody, q url.Values) int {
	t, ok := resolveAPIPath(body.Path)
	if !ok {
		body.Error = "There is no such collection or object: " + body.Path
		return http.StatusNotFound
	}
	body.Kind, body.IsObject, body.ListPath = t.kind, t.object, t.list
	body.IsNew = q.Get("new") == "1" && t.kind.Create && !t.object
	if body.IsNew {
		for _, p := range t.kind.Params {
			body.Form = append(body.Form, apiFormField{APIParam: p})
		}
		return http.StatusOK
	}
	path := body.Path
	if !t.object && !t.kind.Singleton {
		body.Offset, _ = strconv.Atoi(q.Get("offset"))
		body.Offset = max(body.Offset, 0)
		body.Filter = q.Get("filter")
		v := url.Values{}
		v.Set("offset", strconv.Itoa(body.Offset))
		if body.Filter != "" && t.kind.Filter {
			v.Set("filter", body.Filter)
		}
		path += "?" + v.Encode()
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	resp := s.b.API(ctx, sess.user, http.MethodGet, path, nil)
	root, err := parseXML(resp.Body)
	if resp.Status != http.StatusOK || err != nil {
		body.Error = apiFailure(resp.Status, root)
		if resp.Status >= 400 {
			return resp.Status
		}
		return http.StatusBadGateway
	}
	body.Raw = string(resp.Body)
	if !t.object && !t.kind.Singleton {
		s.fillList(body, root)
		return http.StatusOK
	}
	flatten("", root, &body.Fields)
	if t.object {
		for _, c := range t.kind.Children {
			body.Children = append(body.Children, apiLink{Title: c, Path: body.Path + "/" + c})
		}
	}
	if t.kind.Edit {
		set := map[string]string{}
		for _, f := range body.Fields {
			set[f.Name] = f.Value
		}
		for _, p := range t.kind.Params {
			if p.CreateOnly {
				continue
			}
			v, isSet := set[p.Name]
			if p.Kind == ParamSecret {
				v = ""
			}
			body.Form = append(body.Form, apiFormField{APIParam: p, Value: v, IsSet: isSet})
		}
	}
	return http.StatusOK
}

// fillList lays out a list: a row per item, a column per field (the first six seen).
func (s *server) fillList(body *apiBody, root *xnode) {
	body.Total, _ = strconv.Atoi(root.attr("total"))
	var cols []string
	seen := map[string]bool{}
	for _, it := range root.Children {
		for _, c := range it.Children {
			if !seen[c.Name] && len(cols) < 6 {
				seen[c.Name] = true
				cols = append(cols, c.Name)
			}
		}
	}
	body.Columns = cols
	for _, it := range root.Children {
		row := apiRow{ID: it.attr("id")}
		if row.ID != "" {
			row.Path = body.ListPath + "/" + row.ID
		}
		vals := map[string]string{}
		for _, c := range it.Children {
			vals[c.Name] = strings.TrimSpace(c.Text)
		}
		for _, c := range cols {
			row.Values = append(row.Values, vals[c])
		}
		body.Rows = append(body.Rows, row)
	}
	if len(body.Rows) > 0 {
		body.ShowFrom, body.ShowTo = body.Offset+1, body.Offset+len(body.Rows)
	}
	link := func(offset int) string {
		v := url.Values{"path": {body.ListPath}, "offset": {strconv.Itoa(offset)}}
		if body.Filter != "" {
			v.Set("filter", body.Filter)
		}
		return "/admin/configuration/api?" + v.Encode()
	}
	if body.Offset > 0 {
		body.PrevPath = link(max(body.Offset-apiPageSize, 0))
	}
	if body.Offset+len(body.Rows) < body.Total {
		body.NextPath = link(body.Offset + len(body.Rows))
	}
	if body.Kind.Create {
		body.CreateURL = "/admin/configuration/api?" + url.Values{"path": {body.ListPath}, "new": {"1"}}.Encode()
	}
}

// apiAction is POST /admin/configuration/api: op create, save or delete of path, with the
// form's parameters as p.<name> (and, on save, their values as shown, o.<name>: only what
// changed is sent, a secret only when typed).
func (s *server) apiAction(w http.ResponseWriter, r *http.Request, sess *session) {
	f := r.PostForm
	path, op := f.Get("path"), f.Get("op")
	t, ok := resolveAPIPath(path)
	if !ok {
		http.Error(w, "no such collection or object", http.StatusNotFound)
		return
	}
	var method string
	form := url.Values{}
	switch {
	case op == "create" && t.kind.Create && !t.object:
		method = http.MethodPost
		for _, p := range t.kind.Params {
			if v := f.Get("p." + p.Name); v != "" {
				form.Set(p.Name, v)
			}
		}
	case op == "save" && t.kind.Edit && (t.object || t.kind.Singleton):
		method = http.MethodPut
		for _, p := range t.kind.Params {
			v, orig := f.Get("p."+p.Name), f.Get("o."+p.Name)
			switch {
			case p.CreateOnly, !f.Has("p." + p.Name):
			case p.Kind == ParamSecret && v != "":
				form.Set(p.Name, v)
			case p.Kind != ParamSecret && v != orig:
				form.Set(p.Name, v)
			}
		}
	case op == "delete" && t.kind.Delete && t.object && f.Get("confirm") == "1":
		method = http.MethodDelete
	default:
		s.log.Warn("web admin: API action refused", "user", sess.user, "path", path, "op", op)
		http.Error(w, "that cannot be done here", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	var sent url.Values
	if method != http.MethodDelete {
		sent = form
	}
	resp := s.b.API(ctx, sess.user, method, path, sent)
	if resp.Status == http.StatusOK {
		next, done := path, "saved"
		switch method {
		case http.MethodPost:
			done = "created"
			if loc := strings.TrimPrefix(resp.Location, "/api/v1"); loc != resp.Location {
				next = loc
			}
		case http.MethodDelete:
			next, done = t.list, "deleted"
		}
		s.log.Info("web admin: API change", "user", sess.user, "method", method, "path", path)
		http.Redirect(w, r, "/admin/configuration/api?"+url.Values{"path": {next}, "done": {done}}.Encode(), http.StatusSeeOther)
		return
	}
	// Show the page again with the API's refusal and what was typed (never a secret).
	root, _ := parseXML(resp.Body)
	body := apiBody{Path: path, Kind: t.kind, IsObject: t.object, ListPath: t.list, Error: apiFailure(resp.Status, root),
		IsNew: method == http.MethodPost}
	code := resp.Status
	if method != http.MethodPost {
		if c := s.loadAPI(ctx, sess, &body, url.Values{}); c != http.StatusOK {
			code = c
		}
		body.Error = apiFailure(resp.Status, root)
	}
	if method != http.MethodDelete {
		body.Form = nil
		for _, p := range t.kind.Params {
			if p.CreateOnly && method != http.MethodPost {
				continue
			}
			v := f.Get("p." + p.Name)
			if p.Kind == ParamSecret {
				v = ""
			}
			body.Form = append(body.Form, apiFormField{APIParam: p, Value: v, IsSet: f.Get("o."+p.Name) != ""})
		}
	}
	body.Groups = s.apiGroups(t.kind.Path)
	s.render(w, r, code, "api.html", s.page(sess, "configuration", "Configuration: API", body))
}
