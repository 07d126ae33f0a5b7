package webadmin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// formState is what every form page carries: the values typed, the errors beside the
// fields, and an error about the whole form.
type formState struct {
	Values map[string]string
	Errors map[string]string
	Error  string
}

func newForm() formState { return formState{Values: map[string]string{}, Errors: map[string]string{}} }

// V returns a value typed in the form.
func (f formState) V(field string) string { return f.Values[field] }

// E returns the error of a field, "" if none.
func (f formState) E(field string) string { return f.Errors[field] }

// failed reports whether the form has an error.
func (f formState) failed() bool { return len(f.Errors) > 0 || f.Error != "" }

// take copies the named fields from the posted form, trimmed.
func (f formState) take(r *http.Request, fields ...string) {
	for _, name := range fields {
		f.Values[name] = strings.TrimSpace(r.PostForm.Get(name))
	}
}

// need records "is required" for each named field that is empty.
func (f formState) need(what map[string]string, fields ...string) {
	for _, name := range fields {
		if f.Values[name] == "" && f.Errors[name] == "" {
			f.Errors[name] = "Enter " + what[name]
		}
	}
}

// limit records an error for each named field longer than n characters.
func (f formState) limit(n int, fields ...string) {
	for _, name := range fields {
		if utf8.RuneCountInString(f.Values[name]) > n && f.Errors[name] == "" {
			f.Errors[name] = fmt.Sprintf("Use at most %d characters", n)
		}
	}
}

// backendError puts err beside its field when it is a *FieldError of a field the form
// has, else on the form; it returns the HTTP status of the page that shows it.
func (f *formState) backendError(err error, fields ...string) int {
	var fe *FieldError
	if errors.As(err, &fe) {
		for _, name := range fields {
			if fe.Field == name {
				f.Errors[name] = fe.Message
				return http.StatusUnprocessableEntity
			}
		}
		f.Error = fe.Message
		return http.StatusUnprocessableEntity
	}
	if errors.Is(err, ErrNotFound) {
		f.Error = "It no longer exists: someone may have deleted it."
		return http.StatusNotFound
	}
	f.Error = "That did not work: " + err.Error()
	return http.StatusInternalServerError
}

// ctx bounds a request's calls to the Backend.
func reqCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 15*time.Second)
}

// notices are the messages a page shows after a POST-redirect-GET, by the key in its
// ?done= parameter; an unknown key shows nothing.
var notices = map[string]string{
	"space-created":   "Space created.",
	"space-saved":     "Space saved.",
	"space-deleted":   "Space deleted.",
	"member-added":    "Member added.",
	"member-removed":  "Member removed.",
	"user-created":    "User created.",
	"password-set":    "Password changed.",
	"server-added":    "LDAP server added.",
	"mapping-added":   "LDAP mapping added.",
	"source-added":    "LDAP source added.",
	"ldap-deleted":    "Deleted.",
	"sync-started":    "Sync started.",
	"call-ended":      "Call ended.",
	"participant-out": "Participant removed from the call.",
}

func notice(r *http.Request) string { return notices[r.URL.Query().Get("done")] }

func itoa(n int) string { return strconv.Itoa(n) }
