package adminapi

import (
	"encoding/json"
	"encoding/xml"
	"strconv"
)

// Documents whose fields are known only at run time (profiles, TURN servers): CMS shows an
// object's settings that are set, as child elements, in the order of its schema.

// field is one child element of an objectDoc; kind says how JSON writes its value.
type field struct {
	name, value string
	kind        fieldKind
}

type fieldKind int

const (
	kindString fieldKind = iota
	kindBool
	kindInt
)

// objectDoc is <root id="…"><field>value</field>…</root>.
type objectDoc struct {
	root   string
	id     string
	fields []field
}

func (d objectDoc) xmlRoot() string { return d.root }

func (d objectDoc) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	start := xml.StartElement{Name: xml.Name{Local: d.root}}
	if d.id != "" {
		start.Attr = []xml.Attr{{Name: xml.Name{Local: "id"}, Value: d.id}}
	}
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	for _, f := range d.fields {
		if err := e.EncodeElement(f.value, xml.StartElement{Name: xml.Name{Local: f.name}}); err != nil {
			return err
		}
	}
	return e.EncodeToken(start.End())
}

// jsonMap is d's members: id, then its fields, booleans and integers as JSON values.
func (d objectDoc) jsonMap() map[string]any {
	m := map[string]any{}
	if d.id != "" {
		m["id"] = d.id
	}
	for _, f := range d.fields {
		switch f.kind {
		case kindBool:
			if b, err := strconv.ParseBool(f.value); err == nil {
				m[f.name] = b
				continue
			}
		case kindInt:
			if n, err := strconv.ParseInt(f.value, 10, 64); err == nil {
				m[f.name] = n
				continue
			}
		}
		m[f.name] = f.value
	}
	return m
}

func (d objectDoc) MarshalJSON() ([]byte, error) { return json.Marshal(d.jsonMap()) }

// objectsDoc is <root total="N"><item id="…">…</item>…</root>; attrs are further attributes of
// the root (CMS's cdrReceivers has maximum).
type objectsDoc struct {
	root  string
	total int
	attrs []xml.Attr
	items []objectDoc
}

func (d objectsDoc) xmlRoot() string { return d.root }

func (d objectsDoc) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	start := xml.StartElement{Name: xml.Name{Local: d.root},
		Attr: append([]xml.Attr{{Name: xml.Name{Local: "total"}, Value: strconv.Itoa(d.total)}}, d.attrs...)}
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	for _, it := range d.items {
		if err := e.Encode(it); err != nil {
			return err
		}
	}
	return e.EncodeToken(start.End())
}

// MarshalJSON writes {"total":N,"<item>":[…]}, the array present also when empty.
func (d objectsDoc) MarshalJSON() ([]byte, error) {
	m := map[string]any{"total": d.total}
	for _, a := range d.attrs {
		if n, err := strconv.Atoi(a.Value); err == nil {
			m[a.Name.Local] = n
		} else {
			m[a.Name.Local] = a.Value
		}
	}
	items := make([]map[string]any, 0, len(d.items))
	for _, it := range d.items {
		items = append(items, it.jsonMap())
	}
	m[itemName(d.root)] = items
	return json.Marshal(m)
}

// itemName is the element of one item of a list: the list's name without its plural s.
func itemName(list string) string { return list[:len(list)-1] }
