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

// MarshalXML writes the failureDetails element.
func (f *Failure) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	outer := xml.StartElement{Name: xml.Name{Local: "failureDetails"}}
	inner := xml.StartElement{Name: xml.Name{Local: f.Name}}
	if f.Parameter != "" {
		inner.Attr = []xml.Attr{{Name: xml.Name{Local: "parameter"}, Value: f.Parameter}, {Name: xml.Name{Local: "error"}, Value: f.Problem}}
	}
	for _, t := range []xml.Token{outer, inner, inner.End(), outer.End()} {
		if err := e.EncodeToken(t); err != nil {
			return err
		}
	}
	return e.Flush()
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

// wantsJSON reports whether the Accept header ranks application/json above XML. XML is the
// default, also for */* and for equal preference.
func wantsJSON(r *http.Request) bool {
	var jsonQ, xmlQ float64
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			if q, err = strconv.ParseFloat(v, 64); err != nil {
				continue
			}
		}
		switch mt {
		case "application/json":
			jsonQ = max(jsonQ, q)
		case "application/xml", "text/xml":
			xmlQ = max(xmlQ, q)
		}
	}
	return jsonQ > 0 && jsonQ > xmlQ
}
