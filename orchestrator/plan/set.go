package plan

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// segment is one step of a --set path: a key, or a list index.
type segment struct {
	key   string
	index int
	isIdx bool
}

// parseSetPath splits "parameters[0].max" into parameters, [0], max.
func parseSetPath(s string) ([]segment, error) {
	if s == "" {
		return nil, fmt.Errorf("empty key")
	}
	var segs []segment
	for _, part := range strings.Split(s, ".") {
		name, rest, _ := strings.Cut(part, "[")
		if name == "" && (len(segs) == 0 || rest == "") {
			return nil, fmt.Errorf("empty key segment in %q", s)
		}
		if name != "" {
			segs = append(segs, segment{key: name})
		}
		for rest != "" {
			num, after, ok := strings.Cut(rest, "]")
			i, err := strconv.Atoi(num)
			if !ok || err != nil || i < 0 {
				return nil, fmt.Errorf("bad list index in %q: use name[0]", s)
			}
			segs = append(segs, segment{index: i, isIdx: true})
			if after == "" {
				break
			}
			if !strings.HasPrefix(after, "[") {
				return nil, fmt.Errorf("bad list index in %q: use name[0]", s)
			}
			rest = after[1:]
		}
	}
	return segs, nil
}

// setNode parses a --set value as a YAML value, so 4096 is an int, 3s a string
// and [json, md] a list; a value starting with a template is a string. Its lines are zeroed: the value was not written in the file.
func setNode(value string) (*yaml.Node, error) {
	// A leading template would read as a YAML flow mapping: it is a string.
	if strings.HasPrefix(strings.TrimSpace(value), "{{") {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value}, nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(value), &doc); err != nil {
		return nil, fmt.Errorf("value is not valid YAML: %w", err)
	}
	if len(doc.Content) == 0 {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: ""}, nil
	}
	n := doc.Content[0]
	var zero func(*yaml.Node)
	zero = func(n *yaml.Node) {
		n.Line, n.Column = 0, 0
		n.HeadComment, n.LineComment, n.FootComment = "", "", ""
		for _, c := range n.Content {
			zero(c)
		}
	}
	zero(n)
	return n, nil
}

// applySet applies one "key=value" override to the plan's root mapping and
// returns the canonical path it wrote (such as parameters[0].max).
func applySet(root *yaml.Node, expr string) (string, error) {
	key, value, ok := strings.Cut(expr, "=")
	key = strings.TrimSpace(key)
	bad := func(format string, args ...any) error {
		return &DecodeError{Msg: fmt.Sprintf("--set %s: ", expr) + fmt.Sprintf(format, args...)}
	}
	if !ok {
		return "", bad("expected key=value")
	}
	segs, err := parseSetPath(key)
	if err != nil {
		return "", bad("%v", err)
	}
	val, err := setNode(value)
	if err != nil {
		return "", bad("%v", err)
	}

	node, t, path := root, reflect.TypeOf(Plan{}), ""
	for i, seg := range segs {
		last := i == len(segs)-1
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		node = resolve(node)
		if node == nil {
			return "", bad("%s cannot be resolved", path)
		}
		if seg.isIdx {
			if t.Kind() != reflect.Slice && t.Kind() != reflect.Interface {
				return "", bad("%s is not a list", path)
			}
			if isNull(node) {
				*node = yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
			}
			if node.Kind != yaml.SequenceNode {
				return "", bad("%s is not a list", path)
			}
			path = fmt.Sprintf("%s[%d]", path, seg.index)
			if seg.index >= len(node.Content) {
				return "", bad("%s: no such element, the list has %d", path, len(node.Content))
			}
			if t.Kind() == reflect.Slice {
				t = t.Elem()
			}
			if last {
				*resolve(node.Content[seg.index]) = *val
				return path, nil
			}
			node = node.Content[seg.index]
			continue
		}

		// A key: a struct field, a map key, a free-form key, or a list
		// element chosen by its name.
		switch t.Kind() {
		case reflect.Struct:
			idx, names := fieldsOf(t)
			fi, ok := idx[seg.key]
			if !ok {
				e := bad("unknown key %s", join(path, seg.key))
				if s := suggest(seg.key, names); s != "" {
					e.(*DecodeError).Msg += "; " + s
				}
				return "", e
			}
			path = join(path, seg.key)
			next, err := childOf(node, seg.key, true, path)
			if err != nil {
				return "", bad("%v", err)
			}
			t = t.FieldByIndex(fi).Type
			if last {
				*next = *val
				return path, nil
			}
			node = next
		case reflect.Map, reflect.Interface:
			elem := t
			if t.Kind() == reflect.Map {
				elem = t.Elem()
			}
			for elem.Kind() == reflect.Pointer {
				elem = elem.Elem()
			}
			// New keys are fine in free-form maps (static, env, outputs);
			// not in fleets, where a new key would be a misspelt fleet.
			create := elem.Kind() != reflect.Struct
			full := join(path, seg.key)
			next, err := childOf(node, seg.key, create, full)
			if err != nil {
				e := bad("unknown key %s", full)
				if s := suggest(seg.key, keysOf(resolve(node))); s != "" {
					e.(*DecodeError).Msg += "; " + s
				}
				return "", e
			}
			path, t = full, elem
			if last {
				*next = *val
				return path, nil
			}
			node = next
		case reflect.Slice:
			elem := t.Elem()
			for elem.Kind() == reflect.Pointer {
				elem = elem.Elem()
			}
			if _, hasName := fieldsOfName(elem); !hasName {
				return "", bad("%s is a list: choose an element by index, e.g. %s[0]", path, path)
			}
			if node.Kind != yaml.SequenceNode {
				return "", bad("%s is not a list", path)
			}
			found := -1
			var names []string
			for j, e := range node.Content {
				e = resolve(e)
				if e == nil || e.Kind != yaml.MappingNode {
					continue
				}
				if nv := lookup(e, "name"); nv != nil && nv.Kind == yaml.ScalarNode {
					names = append(names, nv.Value)
					if nv.Value == seg.key && found < 0 {
						found = j
					}
				}
			}
			if found < 0 {
				e := bad("no element of %s is named %q", path, seg.key)
				if s := suggest(seg.key, names); s != "" {
					e.(*DecodeError).Msg += "; " + s
				}
				return "", e
			}
			path = fmt.Sprintf("%s[%d]", path, found)
			t = elem
			if last {
				*resolve(node.Content[found]) = *val
				return path, nil
			}
			node = node.Content[found]
		default:
			return "", bad("%s is a value, it has no key %q", path, seg.key)
		}
	}
	return path, nil
}

// fieldsOfName reports whether a struct type has a "name" field.
func fieldsOfName(t reflect.Type) ([]int, bool) {
	if t.Kind() != reflect.Struct {
		return nil, false
	}
	idx, _ := fieldsOf(t)
	i, ok := idx["name"]
	return i, ok
}

// lookup returns the value of key in mapping n, or nil.
func lookup(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := resolve(n.Content[i]); k != nil && k.Kind == yaml.ScalarNode && k.Value == key {
			return resolve(n.Content[i+1])
		}
	}
	return nil
}

func keysOf(n *yaml.Node) []string {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var ks []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := resolve(n.Content[i]); k != nil && k.Kind == yaml.ScalarNode {
			ks = append(ks, k.Value)
		}
	}
	return ks
}

// childOf returns the value node of key in mapping n, adding the key (with a
// null value) when create is set. A null n becomes an empty mapping first.
func childOf(n *yaml.Node, key string, create bool, path string) (*yaml.Node, error) {
	if isNull(n) {
		if !create {
			return nil, fmt.Errorf("no key %s", path)
		}
		*n = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	}
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: its parent is %s, not a mapping", path, kindName(n))
	}
	if v := lookup(n, key); v != nil {
		return v, nil
	}
	if !create {
		return nil, fmt.Errorf("no key %s", path)
	}
	k := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}
	v := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: ""}
	n.Content = append(n.Content, k, v)
	return v, nil
}
