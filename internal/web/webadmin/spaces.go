package webadmin

import (
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// ---- Spaces: create, edit, members, delete ------------------------------------------

type spaceBody struct {
	New     bool
	Space   SpaceDetail
	Form    formState // the space's fields
	Member  formState // the add-a-member form
	Notice  string
	Loaded  bool // Space holds what the store has
	LoadErr string
}

var spaceWhat = map[string]string{"name": "a name"}

func (s *server) newSpacePage(w http.ResponseWriter, r *http.Request, sess *session) {
	f := newForm()
	f.Values["nonMemberAccess"] = ""
	s.render(w, r, http.StatusOK, "space.html", s.page(sess, "spaces", "New space", spaceBody{New: true, Form: f, Member: newForm()}))
}

// spaceForm reads and checks the space form; the Backend checks the rest.
func spaceForm(r *http.Request) (formState, SpaceInput) {
	f := newForm()
	f.take(r, "name", "uri", "callId")
	f.Values["nonMemberAccess"] = r.PostForm.Get("nonMemberAccess")
	f.need(spaceWhat, "name")
	f.limit(200, "name", "uri")
	if v := f.V("callId"); strings.Trim(v, "0123456789") != "" {
		f.Errors["callId"] = "Use digits only"
	}
	in := SpaceInput{Name: f.V("name"), URI: f.V("uri"), CallID: f.V("callId"), NonMemberAccess: f.V("nonMemberAccess") == "1"}
	if p := strings.TrimSpace(r.PostForm.Get("passcode")); p != "" {
		if strings.Trim(p, "0123456789") != "" {
			f.Errors["passcode"] = "Use digits only, so that it can be typed on a keypad"
		}
		in.Passcode = &p
	} else if r.PostForm.Get("clearPasscode") == "1" {
		empty := ""
		in.Passcode = &empty
	}
	return f, in
}

var spaceFields = []string{"name", "uri", "callId", "passcode"}

func (s *server) createSpace(w http.ResponseWriter, r *http.Request, sess *session) {
	f, in := spaceForm(r)
	code := http.StatusUnprocessableEntity
	if !f.failed() {
		ctx, cancel := reqCtx(r)
		defer cancel()
		id, err := s.b.CreateSpace(ctx, in)
		if err == nil {
			s.log.Info("web admin: space created", "user", sess.user, "space", id, "name", in.Name)
			http.Redirect(w, r, "/admin/spaces/"+url.PathEscape(id)+"?done=space-created", http.StatusSeeOther)
			return
		}
		code = f.backendError(err, spaceFields...)
	}
	s.render(w, r, code, "space.html", s.page(sess, "spaces", "New space", spaceBody{New: true, Form: f, Member: newForm()}))
}

// loadSpace reads a space for its page; false when it has answered the request (404 or
// an error page).
func (s *server) loadSpace(w http.ResponseWriter, r *http.Request, sess *session) (SpaceDetail, bool) {
	ctx, cancel := reqCtx(r)
	defer cancel()
	sp, err := s.b.Space(ctx, r.PathValue("id"))
	if errors.Is(err, ErrNotFound) {
		s.notFound(w, r)
		return sp, false
	}
	if err != nil {
		s.log.Error("web admin: read space", "space", r.PathValue("id"), "err", err)
		s.render(w, r, http.StatusInternalServerError, "space.html", s.page(sess, "spaces", "Space", spaceBody{LoadErr: "The space could not be read: " + err.Error()}))
		return sp, false
	}
	sort.SliceStable(sp.MemberList, func(i, j int) bool { return sp.MemberList[i].JID < sp.MemberList[j].JID })
	return sp, true
}

func spaceValues(sp SpaceDetail) formState {
	f := newForm()
	f.Values["name"], f.Values["uri"], f.Values["callId"] = sp.Name, sp.URI, sp.CallID
	if sp.NonMemberAccess {
		f.Values["nonMemberAccess"] = "1"
	}
	return f
}

func (s *server) spacePage(w http.ResponseWriter, r *http.Request, sess *session) {
	sp, ok := s.loadSpace(w, r, sess)
	if !ok {
		return
	}
	body := spaceBody{Space: sp, Form: spaceValues(sp), Member: newForm(), Notice: notice(r), Loaded: true}
	body.Member.Values["role"] = "member"
	s.render(w, r, http.StatusOK, "space.html", s.page(sess, "spaces", "Space: "+sp.Name, body))
}

func (s *server) saveSpace(w http.ResponseWriter, r *http.Request, sess *session) {
	id := r.PathValue("id")
	f, in := spaceForm(r)
	code := http.StatusUnprocessableEntity
	ctx, cancel := reqCtx(r)
	defer cancel()
	if !f.failed() {
		err := s.b.UpdateSpace(ctx, id, in)
		if err == nil {
			s.log.Info("web admin: space saved", "user", sess.user, "space", id, "name", in.Name)
			http.Redirect(w, r, "/admin/spaces/"+url.PathEscape(id)+"?done=space-saved", http.StatusSeeOther)
			return
		}
		if errors.Is(err, ErrNotFound) {
			s.notFound(w, r)
			return
		}
		code = f.backendError(err, spaceFields...)
	}
	sp, ok := s.loadSpace(w, r, sess)
	if !ok {
		return
	}
	body := spaceBody{Space: sp, Form: f, Member: newForm(), Loaded: true}
	body.Member.Values["role"] = "member"
	s.render(w, r, code, "space.html", s.page(sess, "spaces", "Space: "+sp.Name, body))
}

func (s *server) addMember(w http.ResponseWriter, r *http.Request, sess *session) {
	id := r.PathValue("id")
	m := newForm()
	m.take(r, "jid", "role")
	m.need(map[string]string{"jid": "the user's JID, e.g. alice@example.com"}, "jid")
	if role := m.V("role"); role != "member" && role != "owner" {
		m.Errors["role"] = "Choose member or owner"
	}
	code := http.StatusUnprocessableEntity
	ctx, cancel := reqCtx(r)
	defer cancel()
	if !m.failed() {
		err := s.b.AddMember(ctx, id, m.V("jid"), m.V("role"))
		if err == nil {
			s.log.Info("web admin: space member added", "user", sess.user, "space", id, "jid", m.V("jid"), "role", m.V("role"))
			http.Redirect(w, r, "/admin/spaces/"+url.PathEscape(id)+"?done=member-added#members", http.StatusSeeOther)
			return
		}
		code = m.backendError(err, "jid", "role")
	}
	sp, ok := s.loadSpace(w, r, sess)
	if !ok {
		return
	}
	s.render(w, r, code, "space.html", s.page(sess, "spaces", "Space: "+sp.Name, spaceBody{Space: sp, Form: spaceValues(sp), Member: m, Loaded: true}))
}

func (s *server) removeMember(w http.ResponseWriter, r *http.Request, sess *session) {
	id := r.PathValue("id")
	ctx, cancel := reqCtx(r)
	defer cancel()
	err := s.b.RemoveMember(ctx, id, r.PathValue("member"))
	if err != nil && !errors.Is(err, ErrNotFound) {
		sp, ok := s.loadSpace(w, r, sess)
		if !ok {
			return
		}
		body := spaceBody{Space: sp, Form: spaceValues(sp), Member: newForm(), Loaded: true}
		body.Member.Error = "The member could not be removed: " + err.Error()
		s.render(w, r, http.StatusInternalServerError, "space.html", s.page(sess, "spaces", "Space: "+sp.Name, body))
		return
	}
	s.log.Info("web admin: space member removed", "user", sess.user, "space", id, "member", r.PathValue("member"))
	http.Redirect(w, r, "/admin/spaces/"+url.PathEscape(id)+"?done=member-removed#members", http.StatusSeeOther)
}

// confirmBody is a confirmation page: what will happen, and a form that does it.
type confirmBody struct {
	Title   string
	Lead    string
	Details []string
	Warning string // what cannot be undone or what it ends, shown prominently
	Action  string // the form's action
	Button  string
	Back    string
	Error   string
	ID      string // for tests: the confirm button's id
}

func (s *server) deleteSpacePage(w http.ResponseWriter, r *http.Request, sess *session) {
	sp, ok := s.loadSpace(w, r, sess)
	if !ok {
		return
	}
	s.render(w, r, http.StatusOK, "confirm.html", s.page(sess, "spaces", "Delete space", deleteSpaceBody(sp)))
}

func deleteSpaceBody(sp SpaceDetail) confirmBody {
	b := confirmBody{
		Title:  "Delete the space “" + sp.Name + "”?",
		Lead:   "The space, its URI and call ID and its " + plural(len(sp.MemberList), "membership", "memberships") + " are deleted. This cannot be undone.",
		Action: "/admin/spaces/" + url.PathEscape(sp.ID) + "/delete",
		Button: "Delete space",
		Back:   "/admin/spaces/" + url.PathEscape(sp.ID),
		ID:     "confirm-delete",
	}
	if sp.Call != nil {
		b.Warning = "A call is live in this space with " + plural(len(sp.Call.Participants), "participant", "participants") +
			": deleting the space ends it, and everyone in it is dropped."
	} else {
		b.Details = append(b.Details, "No call is live in this space.")
	}
	return b
}

func (s *server) deleteSpace(w http.ResponseWriter, r *http.Request, sess *session) {
	id := r.PathValue("id")
	ctx, cancel := reqCtx(r)
	defer cancel()
	err := s.b.DeleteSpace(ctx, id)
	if err != nil && !errors.Is(err, ErrNotFound) {
		sp, ok := s.loadSpace(w, r, sess)
		if !ok {
			return
		}
		b := deleteSpaceBody(sp)
		b.Error = "The space could not be deleted: " + err.Error()
		s.render(w, r, http.StatusInternalServerError, "confirm.html", s.page(sess, "spaces", "Delete space", b))
		return
	}
	s.log.Info("web admin: space deleted", "user", sess.user, "space", id)
	http.Redirect(w, r, "/admin/spaces?done=space-deleted", http.StatusSeeOther)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return itoa(n) + " " + many
}
