package adminapi

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"

	"confab.dev/confab/internal/secret"
)

// Form holds a request's form-encoded parameters with CMS semantics: an absent parameter
// leaves its field unchanged, a present but empty one unsets it (the field's zero value).
// Each setter assigns only when the parameter is present and valid; the first problem is kept
// and reported by Err, so a handler reads all its parameters and then checks once:
//
//	f.String("domain", &cfg.Domain, link.ValidDomain)
//	f.Secret("sharedSecret", &cfg.SharedSecret, link.ValidSecret)
//	if err := f.Err(); err != nil { return nil, err }
type Form struct {
	v   url.Values
	err *Failure
}

// parseForm reads the body of a POST or PUT as CMS does: as a form, whatever its
// Content-Type says. Scripts send form bodies labelled application/x-www-form-urlencoded, but
// also x-www-form-urlencoded, text/plain, application/json or nothing at all; a
// multipart/form-data body (curl -F, Postman's form-data) is read as the form it is. A body
// that is not a form at all (a JSON or XML document) is refused with a parameterError
// (parameter "body", error "notFormEncoded") rather than read as a form with one odd name and
// then ignored. A body over MaxBodyBytes is a 413; query parameters are not part of the form.
func parseForm(r *http.Request) (*Form, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &Failure{Status: http.StatusRequestEntityTooLarge, Name: "requestTooLarge",
				Reason: "body over " + strconv.FormatInt(tooBig.Limit, 10) + " bytes"}
		}
		return nil, &Failure{Status: http.StatusBadRequest, Name: "malformedRequest", Reason: err.Error()}
	}
	if mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil && mt == "multipart/form-data" && params["boundary"] != "" {
		return parseMultipart(body, params["boundary"])
	}
	if what := notAForm(body); what != "" {
		return nil, ParameterError("body", "notFormEncoded",
			"the body is "+what+", not a form; send parameters as application/x-www-form-urlencoded (Content-Type "+
				strconv.Quote(r.Header.Get("Content-Type"))+")")
	}
	v, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, &Failure{Status: http.StatusBadRequest, Name: "malformedRequest", Reason: err.Error()}
	}
	return &Form{v: v}, nil
}

// notAForm says what body is when it is a document rather than a form ("a JSON document",
// "an XML document"), or "" when it may be a form.
func notAForm(body []byte) string {
	t := bytes.TrimLeft(body, " \t\r\n\ufeff")
	switch {
	case len(t) == 0:
		return ""
	case t[0] == '{' || t[0] == '[':
		return "a JSON document"
	case t[0] == '<':
		return "an XML document"
	}
	return ""
}

// maxMultipartParts bounds the parts of a multipart form, as Go bounds a urlencoded one.
const maxMultipartParts = 1000

// parseMultipart reads a multipart/form-data body's fields; a file part is read as the field
// it names, like any other.
func parseMultipart(body []byte, boundary string) (*Form, error) {
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	v := url.Values{}
	for n := 0; ; n++ {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return &Form{v: v}, nil
		}
		if err != nil {
			return nil, &Failure{Status: http.StatusBadRequest, Name: "malformedRequest", Reason: "multipart body: " + err.Error()}
		}
		if n >= maxMultipartParts {
			return nil, &Failure{Status: http.StatusBadRequest, Name: "malformedRequest", Reason: "more than " + strconv.Itoa(maxMultipartParts) + " parts"}
		}
		name := p.FormName()
		b, err := io.ReadAll(p)
		if err != nil {
			return nil, &Failure{Status: http.StatusBadRequest, Name: "malformedRequest", Reason: "multipart body: " + err.Error()}
		}
		if name != "" {
			v.Add(name, string(b))
		}
	}
}

// Has reports whether the parameter is present (possibly empty).
func (f *Form) Has(name string) bool { return f.v.Has(name) }

// value returns the parameter and whether it is present, refusing one given twice.
func (f *Form) value(name string) (string, bool) {
	vs, ok := f.v[name]
	if !ok {
		return "", false
	}
	if len(vs) > 1 {
		f.setErr(ParameterError(name, "invalidValue", "given more than once"))
		return "", false
	}
	return vs[0], true
}

func (f *Form) setErr(e *Failure) {
	if f.err == nil {
		f.err = e
	}
}

// check runs valid (if any) on a present, non-empty value; empty always means unset.
func (f *Form) check(name, v string, valid func(string) error) bool {
	if v == "" || valid == nil {
		return true
	}
	if err := valid(v); err != nil {
		f.setErr(ParameterError(name, "invalidValue", err.Error()))
		return false
	}
	return true
}

// String sets *dst to the parameter if present and valid.
func (f *Form) String(name string, dst *string, valid func(string) error) {
	if v, ok := f.value(name); ok && f.check(name, v, valid) {
		*dst = v
	}
}

// Secret is String for a write-only value.
func (f *Form) Secret(name string, dst *secret.Secret, valid func(string) error) {
	if v, ok := f.value(name); ok && f.check(name, v, valid) {
		*dst = secret.New(v)
	}
}

// Bool sets *dst from "true" or "false" (empty: false).
func (f *Form) Bool(name string, dst *bool) {
	v, ok := f.value(name)
	if !ok {
		return
	}
	switch v {
	case "true":
		*dst = true
	case "false", "":
		*dst = false
	default:
		f.setErr(ParameterError(name, "invalidValue", "want true or false"))
	}
}

// Int sets *dst to a decimal integer in [lo, hi] (empty: 0).
func (f *Form) Int(name string, dst *int, lo, hi int) {
	v, ok := f.value(name)
	if !ok {
		return
	}
	if v == "" {
		*dst = 0
		return
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		f.setErr(ParameterError(name, "invalidValue", "want an integer from "+strconv.Itoa(lo)+" to "+strconv.Itoa(hi)))
		return
	}
	*dst = n
}

// Err returns the first problem found, or nil.
func (f *Form) Err() error {
	if f.err == nil {
		return nil
	}
	return f.err
}

// queryUint reads an optional unsigned query parameter (def when absent).
func queryUint(r *http.Request, name string, def uint64) (uint64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, ParameterError(name, "invalidValue", "want a non-negative integer")
	}
	return n, nil
}
