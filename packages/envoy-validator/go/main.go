// Command envoy-validate checks Envoy v3 configuration the way Envoy's proto layer does,
// without an Envoy binary: strict protojson (unknown fields, unknown @type, bad enums and
// durations are errors) followed by protoc-gen-validate's ValidateAll() on every message,
// including the body of every google.protobuf.Any (typed_config, DiscoveryResponse
// resources), which PGV's generated code does not descend into.
//
// Input (stdin): a stream of JSON documents, normally one per line (NDJSON),
//
//	{"kind": "bootstrap" | "listener" | "cluster" | "secret" | "lds" | "cds" | "sds", "json": {...}}
//
// where lds/cds/sds are DiscoveryResponse-shaped files as Envoy's file-based xDS reads them.
// Output (stdout): one line per document, in order: {"ok": bool, "errors": [string]}.
// Errors name the offending place as a path into the document's "json"
// (resources[0].filter_chains[1].filters[0].typed_config.stat_prefix).
//
// Exit status: 0 whenever every document got a result (valid or not); 2 for usage errors
// (arguments, stdin that is not a stream of JSON values).
//
// With --descriptor-set it instead writes to stdout, in binary, a google.protobuf.FileDescriptorSet
// of every .proto file linked into it (protoregistry.GlobalFiles), each file after the files it
// imports: the descriptor @ktube/envoy-api generates its TypeScript from, so the types the
// renderer builds with and the rules this checker applies come from the same Envoy API release.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/anypb"

	// Top-level resource types.
	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"

	// Extensions KTube's edge config may name in a typed_config. Linking a package
	// registers its types, so protojson can resolve the @type and the walk can validate it;
	// an @type that is not linked here is reported as unknown.
	_ "github.com/cncf/xds/go/xds/type/matcher/v3"                      // the matcher tree udp_proxy routes with
	_ "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"     // health checks, file-based config sources
	_ "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3" // ClusterLoadAssignment
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/proxy_protocol/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/udp/udp_proxy/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/matching/common_inputs/network/v3" // udp_proxy matcher inputs
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/proxy_protocol/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/raw_buffer/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
)

// document is one line of input.
type document struct {
	Kind string          `json:"kind"`
	JSON json.RawMessage `json:"json"`
}

// result is one line of output.
type result struct {
	OK     bool     `json:"ok"`
	Errors []string `json:"errors"`
}

// kinds maps a document kind to its root message and, for discovery files, the
// resource type every entry of `resources` must have.
var kinds = map[string]struct {
	root     func() proto.Message
	resource protoreflect.FullName
}{
	"bootstrap": {root: func() proto.Message { return &bootstrapv3.Bootstrap{} }},
	"listener":  {root: func() proto.Message { return &listenerv3.Listener{} }},
	"cluster":   {root: func() proto.Message { return &clusterv3.Cluster{} }},
	"secret":    {root: func() proto.Message { return &tlsv3.Secret{} }},
	"lds":       {root: func() proto.Message { return &discoveryv3.DiscoveryResponse{} }, resource: "envoy.config.listener.v3.Listener"},
	"cds":       {root: func() proto.Message { return &discoveryv3.DiscoveryResponse{} }, resource: "envoy.config.cluster.v3.Cluster"},
	"sds":       {root: func() proto.Message { return &discoveryv3.DiscoveryResponse{} }, resource: "envoy.extensions.transport_sockets.tls.v3.Secret"},
}

const usage = `usage: envoy-validate [--version | --descriptor-set]

Reads JSON documents from stdin, one per line:
  {"kind": "bootstrap|listener|cluster|secret|lds|cds|sds", "json": <Envoy v3 config as JSON>}
and prints one {"ok": bool, "errors": [string]} line per document, in order.
Exits 0 when every document got a result, 2 on usage errors.

--descriptor-set writes a binary google.protobuf.FileDescriptorSet of every linked .proto
file to stdout, imports before the files that import them, and exits.
`

func main() {
	args := os.Args[1:]
	if len(args) == 1 && (args[0] == "--version" || args[0] == "-version") {
		fmt.Println(versions())
		return
	}
	if len(args) == 1 && args[0] == "--descriptor-set" {
		data, err := proto.MarshalOptions{Deterministic: true}.Marshal(descriptorSet())
		if err == nil {
			_, err = os.Stdout.Write(data)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "envoy-validate: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if len(args) == 1 && (args[0] == "--help" || args[0] == "-h") {
		fmt.Print(usage)
		return
	}
	if len(args) > 0 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	if err := run(os.Stdin, out); err != nil {
		out.Flush()
		fmt.Fprintf(os.Stderr, "envoy-validate: %v\n", err)
		os.Exit(2)
	}
}

// versions lists the modules whose protos and rules this binary checks against.
func versions() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	var parts []string
	for _, dep := range info.Deps {
		switch dep.Path {
		case "github.com/envoyproxy/go-control-plane/envoy", "github.com/cncf/xds/go", "github.com/envoyproxy/protoc-gen-validate", "google.golang.org/protobuf":
			parts = append(parts, dep.Path+" "+dep.Version)
		}
	}
	return strings.Join(parts, "\n")
}

// descriptorSet returns every file in protoregistry.GlobalFiles, topologically ordered: each
// file after all the files it imports, ties broken by path, so the output is stable.
func descriptorSet() *descriptorpb.FileDescriptorSet {
	var paths []string
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		paths = append(paths, fd.Path())
		return true
	})
	sort.Strings(paths)
	set := &descriptorpb.FileDescriptorSet{}
	done := map[string]bool{}
	var visit func(fd protoreflect.FileDescriptor)
	visit = func(fd protoreflect.FileDescriptor) {
		if done[fd.Path()] {
			return
		}
		done[fd.Path()] = true
		imports := fd.Imports()
		for i := 0; i < imports.Len(); i++ {
			visit(imports.Get(i).FileDescriptor)
		}
		set.File = append(set.File, protodesc.ToFileDescriptorProto(fd))
	}
	for _, path := range paths {
		fd, err := protoregistry.GlobalFiles.FindFileByPath(path)
		if err == nil {
			visit(fd)
		}
	}
	return set
}

func run(in io.Reader, out io.Writer) error {
	dec := json.NewDecoder(bufio.NewReaderSize(in, 1<<20))
	enc := json.NewEncoder(out)
	for n := 1; ; n++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("document %d: stdin is not a stream of JSON values: %w", n, err)
		}
		res := validate(raw)
		if res.Errors == nil {
			res.Errors = []string{}
		}
		if err := enc.Encode(res); err != nil {
			return err
		}
		if f, ok := out.(*bufio.Writer); ok {
			if err := f.Flush(); err != nil {
				return err
			}
		}
	}
}

func validate(raw json.RawMessage) result {
	var doc document
	strict := json.NewDecoder(bytes.NewReader(raw))
	strict.DisallowUnknownFields()
	if err := strict.Decode(&doc); err != nil {
		return fail(fmt.Sprintf(`not a {"kind", "json"} document: %v`, err))
	}
	kind, ok := kinds[doc.Kind]
	if !ok {
		return fail(fmt.Sprintf("unknown kind %q (one of bootstrap, listener, cluster, secret, lds, cds, sds)", doc.Kind))
	}
	if len(doc.JSON) == 0 || string(doc.JSON) == "null" {
		return fail(`missing "json"`)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, doc.JSON); err != nil {
		return fail(fmt.Sprintf("json: %v", err))
	}
	data := compact.Bytes()

	msg := kind.root()
	opts := protojson.UnmarshalOptions{DiscardUnknown: false, Resolver: protoregistry.GlobalTypes}
	if err := opts.Unmarshal(data, msg); err != nil {
		return fail(locate(data, err))
	}

	var errs []string
	if kind.resource != "" {
		resp := msg.(*discoveryv3.DiscoveryResponse)
		want := "type.googleapis.com/" + string(kind.resource)
		if resp.TypeUrl != "" && resp.TypeUrl != want {
			errs = append(errs, fmt.Sprintf("type_url: %q, but a %s file holds %s", resp.TypeUrl, doc.Kind, want))
		}
		for i, r := range resp.Resources {
			if r.TypeUrl != want {
				errs = append(errs, fmt.Sprintf("resources[%d].@type: %q, but a %s file holds %s", i, r.TypeUrl, doc.Kind, want))
			}
		}
	}
	errs = append(errs, validateTree(msg, "")...)
	return result{OK: len(errs) == 0, Errors: errs}
}

func fail(msg string) result { return result{OK: false, Errors: []string{msg}} }

// validateTree runs ValidateAll on m, then on the body of every Any below it (recursively).
func validateTree(m proto.Message, path string) []string {
	var errs []string
	if v, ok := m.(interface{ ValidateAll() error }); ok {
		if err := v.ValidateAll(); err != nil {
			flatten(err, m.ProtoReflect().Descriptor(), path, &errs)
		}
	}
	walkAnys(m.ProtoReflect(), path, func(a *anypb.Any, at string) {
		inner, err := a.UnmarshalNew()
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: cannot unpack %s: %v", at, a.TypeUrl, err))
			return
		}
		errs = append(errs, validateTree(inner, at)...)
	})
	return errs
}

// walkAnys calls visit for every Any field value reachable from m without crossing another Any.
func walkAnys(m protoreflect.Message, path string, visit func(*anypb.Any, string)) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() == nil {
			return true
		}
		at := join(path, string(fd.Name()))
		each := func(mv protoreflect.Message, at string) {
			if a, ok := mv.Interface().(*anypb.Any); ok {
				visit(a, at)
				return
			}
			walkAnys(mv, at, visit)
		}
		switch {
		case fd.IsList():
			list := v.List()
			for i := 0; i < list.Len(); i++ {
				each(list.Get(i).Message(), fmt.Sprintf("%s[%d]", at, i))
			}
		case fd.IsMap():
			if fd.MapValue().Message() == nil {
				return true
			}
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				each(mv.Message(), fmt.Sprintf("%s[%s]", at, strconv.Quote(k.String())))
				return true
			})
		default:
			each(v.Message(), at)
		}
		return true
	})
}

// PGV's generated error types: one field's error, and the list ValidateAll returns.
type fieldError interface {
	Field() string
	Reason() string
	Cause() error
	Key() bool
}
type multiError interface{ AllErrors() []error }

var indexed = regexp.MustCompile(`^([A-Za-z0-9_]+)(\[(.*)\])?$`)

// flatten turns PGV's nested errors into "path: reason" lines, translating PGV's Go field
// names (FilterChains[0]) into the proto names the JSON uses (filter_chains[0]).
func flatten(err error, md protoreflect.MessageDescriptor, path string, out *[]string) {
	var multi multiError
	if errors.As(err, &multi) {
		for _, e := range multi.AllErrors() {
			flatten(e, md, path, out)
		}
		return
	}
	var fe fieldError
	if !errors.As(err, &fe) {
		*out = append(*out, fmt.Sprintf("%s: %v", orRoot(path), err))
		return
	}
	name, child := fe.Field(), protoreflect.MessageDescriptor(nil)
	suffix := ""
	if m := indexed.FindStringSubmatch(name); m != nil {
		name, suffix = m[1], m[2]
	}
	segment := name
	if md != nil {
		if fd := fieldByGoName(md, name); fd != nil {
			segment = string(fd.Name())
			if fd.IsMap() {
				child = fd.MapValue().Message()
			} else {
				child = fd.Message()
			}
		} else if od := oneofByGoName(md, name); od != nil {
			segment = string(od.Name())
		}
	}
	at := join(path, segment) + suffix
	if fe.Key() {
		at += " (key)"
	}
	if cause := fe.Cause(); cause != nil && child != nil && strings.HasPrefix(fe.Reason(), "embedded message failed validation") {
		flatten(cause, child, at, out)
		return
	}
	line := fmt.Sprintf("%s: %s", at, fe.Reason())
	if cause := fe.Cause(); cause != nil {
		line += ": " + cause.Error()
	}
	*out = append(*out, line)
}

func fieldByGoName(md protoreflect.MessageDescriptor, goName string) protoreflect.FieldDescriptor {
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		if goCamelCase(string(fields.Get(i).Name())) == goName {
			return fields.Get(i)
		}
	}
	return nil
}

func oneofByGoName(md protoreflect.MessageDescriptor, goName string) protoreflect.OneofDescriptor {
	oneofs := md.Oneofs()
	for i := 0; i < oneofs.Len(); i++ {
		if goCamelCase(string(oneofs.Get(i).Name())) == goName {
			return oneofs.Get(i)
		}
	}
	return nil
}

// goCamelCase is protoc-gen-go's field-name mangling (google.golang.org/protobuf/internal/strs).
func goCamelCase(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.' && i+1 < len(s) && isLower(s[i+1]):
		case c == '.':
			b = append(b, '_')
		case c == '_' && (i == 0 || s[i-1] == '.'):
			b = append(b, 'X')
		case c == '_' && i+1 < len(s) && isLower(s[i+1]):
		case '0' <= c && c <= '9':
			b = append(b, c)
		default:
			if isLower(c) {
				c -= 'a' - 'A'
			}
			b = append(b, c)
			for ; i+1 < len(s) && isLower(s[i+1]); i++ {
				b = append(b, s[i+1])
			}
		}
	}
	return string(b)
}

func isLower(c byte) bool { return 'a' <= c && c <= 'z' }

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func orRoot(path string) string {
	if path == "" {
		return "(root)"
	}
	return path
}

// protojson reports "proto: (line L:C): message"; C counts runes on the (single) line.
// The blank after "proto:" is a space or, at random, U+00A0 (protobuf-go discourages
// matching its messages), so both are accepted.
// Syntax errors read "proto: syntax error (line L:C): unexpected token 5".
var position = regexp.MustCompile(`^proto:[\s\x{00a0}]*(syntax error)?[\s\x{00a0}]*\(line (\d+):(\d+)\):[\s\x{00a0}]*(.*)$`)
var prefix = regexp.MustCompile(`^proto:[\s\x{00a0}]*`)

// locate rewrites a protojson error's line:column into a path into the document.
func locate(data []byte, err error) string {
	m := position.FindStringSubmatch(err.Error())
	if m == nil {
		return prefix.ReplaceAllString(err.Error(), "")
	}
	line, _ := strconv.Atoi(m[2])
	col, _ := strconv.Atoi(m[3])
	message := m[4]
	if m[1] != "" {
		message = m[1] + ": " + message
	}
	if line != 1 {
		return message
	}
	offset := 0
	for runes := 1; runes < col && offset < len(data); runes++ {
		_, size := utf8.DecodeRune(data[offset:])
		offset += size
	}
	return fmt.Sprintf("%s: %s", orRoot(pathAt(data, offset)), message)
}

// pathAt returns the path of the JSON token that starts at or spans offset in compact JSON.
func pathAt(data []byte, offset int) string {
	type frame struct {
		array   bool
		index   int
		key     string
		wantKey bool
	}
	var stack []*frame
	// render writes the path of the current position inside the innermost n containers.
	render := func(n int) string {
		var b strings.Builder
		for _, f := range stack[:n] {
			if f.array {
				fmt.Fprintf(&b, "[%d]", f.index)
			} else {
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(f.key)
			}
		}
		return b.String()
	}
	advance := func() {
		if len(stack) == 0 {
			return
		}
		if top := stack[len(stack)-1]; top.array {
			top.index++
		} else {
			top.wantKey = true
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	last := ""
	for {
		start := int(dec.InputOffset())
		tok, err := dec.Token()
		if err != nil {
			return last
		}
		end := int(dec.InputOffset())
		if start < len(data) && (data[start] == ',' || data[start] == ':') {
			start++
		}
		within := offset >= start && offset < end
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && !top.array && top.wantKey {
			if key, ok := tok.(string); ok {
				top.key, top.wantKey = key, false
				if within {
					return render(len(stack))
				}
				continue
			}
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			if within {
				return render(len(stack) - 1)
			}
			stack = stack[:len(stack)-1]
			advance()
			continue
		}
		// A value: scalar, or the opening of an object or array.
		here := render(len(stack))
		if within {
			return here
		}
		last = here
		if d, ok := tok.(json.Delim); ok {
			stack = append(stack, &frame{array: d == '[', wantKey: d == '{'})
			continue
		}
		advance()
	}
}
