package adminapi

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
)

// Failure is an error the API reports to the client as a failureDetails document:
//
//	<failureDetails><parameterError parameter="domain" error="invalidValue"/></failureDetails>
//	<failureDetails><coSpaceDoesNotExist/></failureDetails>
//
// and in JSON {"failureDetails":{"parameterError":{"parameter":"domain","error":"invalidValue"}}}.
type Failure struct {
	Status    int    // the HTTP status, 400 when zero
	Name      string // the element inside failureDetails, e.g. "coSpaceDoesNotExist"
	Parameter string // for a parameterError: the parameter at fault
	Problem   string // for a parameterError: its error attribute, e.g. "invalidValue"
	// Reason says why, for the log only: it is never sent (CMS documents have no place for
	// it) and must not contain a secret value.
	Reason string
}

// ParameterError reports a bad request parameter (400), e.g. ParameterError("domain",
// "invalidValue", "label longer than 63 characters").
func ParameterError(parameter, problem, reason string) *Failure {
	return &Failure{Status: http.StatusBadRequest, Name: "parameterError", Parameter: parameter, Problem: problem, Reason: reason}
}

// DoesNotExist reports a missing object (404); name is CMS's, e.g. "coSpaceDoesNotExist".
func DoesNotExist(name string) *Failure {
	return &Failure{Status: http.StatusNotFound, Name: name}
}

func (f *Failure) Error() string {
	s := f.Name
	if f.Parameter != "" {
		s += " " + f.Parameter + " " + f.Problem
	}
	if f.Reason != "" {
		s += ": " + f.Reason
	}
	return s
}

func (f *Failure) status() int {
	if f.Status == 0 {
		return http.StatusBadRequest
	}
	return f.Status
}

func (f *Failure) xmlRoot() string { return "failureDetails" }

// appendXML writes the failureDetails element as CMS writes it, the reason an empty element
// with a space before its "/>": <failureDetails><duplicateCoSpaceUri /></failureDetails>.
func (f *Failure) appendXML(b []byte) []byte {
	b = append(b, "<failureDetails><"...)
	b = append(b, f.Name...)
	if f.Parameter != "" {
		b = append(b, ` parameter="`...)
		b = appendAttr(b, f.Parameter)
		b = append(b, `" error="`...)
		b = appendAttr(b, f.Problem)
		b = append(b, '"')
	}
	return append(b, " /></failureDetails>"...)
}

// appendAttr appends s escaped for an attribute value.
func appendAttr(b []byte, s string) []byte {
	var buf bytes.Buffer
	_ = xml.EscapeText(&buf, []byte(s))
	return append(b, buf.Bytes()...)
}

// MarshalJSON writes the content of failureDetails (the envelope is added by write).
func (f *Failure) MarshalJSON() ([]byte, error) {
	inner := map[string]string{}
	if f.Parameter != "" {
		inner["parameter"], inner["error"] = f.Parameter, f.Problem
	}
	return json.Marshal(map[string]any{f.Name: inner})
}

// fail answers with err: a *Failure as itself, anything else as 500 (logged, not sent).
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var f *Failure
	if !errors.As(err, &f) {
		s.log.Error("api internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		f = &Failure{Status: http.StatusInternalServerError, Name: "internalError"}
	} else if f.Reason != "" {
		s.log.Info("api request refused", "method", r.Method, "path", r.URL.Path, "failure", f.Name,
			"parameter", f.Parameter, "reason", f.Reason)
	}
	s.write(w, r, f.status(), f)
}

// xmlDecl is the declaration CMS puts before every document.
const xmlDecl = `<?xml version="1.0"?>`

// write sends doc (nil: no body) as XML or, when the client prefers it, JSON. A document is
// a struct whose XMLName gives the root element; in JSON it becomes {"<root>": {fields}}.
func (s *server) write(w http.ResponseWriter, r *http.Request, status int, doc any) {
	if doc == nil {
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(status)
		return
	}
	var body []byte
	var err error
	if wantsJSON(r) {
		w.Header().Set("Content-Type", "application/json")
		body, err = json.Marshal(map[string]any{rootName(doc): doc})
	} else if f, ok := doc.(*Failure); ok {
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		body = f.appendXML([]byte(xmlDecl))
	} else {
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		var b bytes.Buffer
		b.WriteString(xmlDecl)
		err = xml.NewEncoder(&b).Encode(doc)
		body = b.Bytes()
	}
	if err != nil {
		s.log.Error("api encode response", "path", r.URL.Path, "err", err)
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// rootName is the root element of a document: its XMLName field's tag.
func rootName(doc any) string {
	if n, ok := doc.(interface{ xmlRoot() string }); ok {
		return n.xmlRoot()
	}
	t := reflect.TypeOf(doc)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if f, ok := t.FieldByName("XMLName"); ok {
		if name, _, _ := strings.Cut(f.Tag.Get("xml"), ","); name != "" {
			return name
		}
	}
	panic(fmt.Sprintf("adminapi: document type %v has no XMLName tag", t))
}

// wantsJSON reports whether the client asks for JSON alone: every media range it accepts
// (q above 0) is application/json. Anything else gets XML, as from CMS: no Accept, */*, and
// also axios's default "application/json, text/plain, */*", whose users parse XML.
func wantsJSON(r *http.Request) bool {
	asked := false
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if v, ok := params["q"]; ok {
			if q, err := strconv.ParseFloat(v, 64); err != nil || q <= 0 {
				continue
			}
		}
		if mt != "application/json" {
			return false
		}
		asked = true
	}
	return asked
}
