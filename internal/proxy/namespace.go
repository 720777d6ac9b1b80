package proxy

import (
	"context"
	"strings"

	pb "github.com/apache/rocketmq-clients/golang/v5/protocol/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Namespaces. The gRPC SDKs carry an application's namespace in every Resource
// (resource_namespace; go5 Config.NameSpace, Node.js `namespace`), and Apache's proxy maps
// each topic and group to "<namespace>%<name>" (NamespaceUtil.wrapNamespace) before using it,
// which is also how the 4.x clients name namespaced resources (go2 WithNamespace). Messages go
// back with the namespace split off again.

const namespaceSeparator = "%"

// wrapNamespace returns name inside namespace ns: "ns%name", "%RETRY%ns%group",
// "%DLQ%ns%group". Names without a namespace, system names and names already inside ns are
// returned unchanged.
func wrapNamespace(ns, name string) string {
	if ns == "" || name == "" || systemTopics[name] || systemGroups[name] || strings.HasPrefix(name, "rmq_sys_") || strings.HasPrefix(name, "CID_RMQ_SYS_") {
		return name
	}
	prefix, bare := splitRetryDLQ(name)
	if strings.HasPrefix(bare, ns+namespaceSeparator) {
		return name
	}
	return prefix + ns + namespaceSeparator + bare
}

// withoutNamespace splits a stored name into its namespace and its name without it
// (NamespaceUtil.withoutNamespace / getNamespaceFromResource): "ns1%T" is ("ns1", "T");
// "%DLQ%ns1%G" is ("ns1", "%DLQ%G").
func withoutNamespace(name string) (ns, bare string) {
	if name == "" || systemTopics[name] || systemGroups[name] {
		return "", name
	}
	prefix, rest := splitRetryDLQ(name)
	if i := strings.Index(rest, namespaceSeparator); i > 0 {
		return rest[:i], prefix + rest[i+1:]
	}
	return "", name
}

func splitRetryDLQ(name string) (prefix, rest string) {
	for _, p := range []string{"%RETRY%", "%DLQ%"} {
		if strings.HasPrefix(name, p) {
			return p, name[len(p):]
		}
	}
	return "", name
}

// mdNamespace is the request header in which the SDKs also send their namespace. Node.js
// 1.0.8 consumers send it alone: their group and topic Resources carry no
// resource_namespace (QA R8K-4), so without it a namespaced Node consumer would read the
// bare topic while its producer writes ns%topic.
const mdNamespace = "x-mq-namespace"

// fillNamespace sets ns on every apache.rocketmq.v2.Resource in m that names something and
// has no namespace of its own (an explicit resource_namespace always wins).
func fillNamespace(m protoreflect.Message, ns string) {
	if r, ok := m.Interface().(*pb.Resource); ok {
		if r.GetResourceNamespace() == "" && r.GetName() != "" {
			r.ResourceNamespace = ns
		}
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind {
			return true
		}
		switch {
		case fd.IsList():
			for l, i := v.List(), 0; i < l.Len(); i++ {
				fillNamespace(l.Get(i).Message(), ns)
			}
		case fd.IsMap():
			if fd.MapValue().Kind() == protoreflect.MessageKind {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					fillNamespace(mv.Message(), ns)
					return true
				})
			}
		default:
			fillNamespace(v.Message(), ns)
		}
		return true
	})
}

// requestNamespace is the x-mq-namespace header of an incoming call ("" when absent).
func requestNamespace(ctx context.Context) string {
	return firstMD(incomingMD(ctx), mdNamespace)
}

// mdKey carries a call's incoming metadata, copied once by unaryNamespace:
// metadata.FromIncomingContext copies (and lower-cases) the whole map on every call, and a
// send read it twice (about 6% of the proxy's CPU per send with the go5 SDK's headers).
type mdKey struct{}

// incomingMD is the call's incoming metadata: the copy unaryNamespace kept, else a new one.
// Callers only read it.
func incomingMD(ctx context.Context) metadata.MD {
	if md, ok := ctx.Value(mdKey{}).(metadata.MD); ok {
		return md
	}
	md, _ := metadata.FromIncomingContext(ctx)
	return md
}

// unaryNamespace applies the x-mq-namespace header to the request's Resources, and keeps
// the metadata it read for the handler (see incomingMD).
func unaryNamespace(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if ns := firstMD(md, mdNamespace); ns != "" {
		if m, ok := req.(proto.Message); ok {
			fillNamespace(m.ProtoReflect(), ns)
		}
	}
	return handler(context.WithValue(ctx, mdKey{}, md), req)
}

// streamNamespace does the same for every message received on a stream.
func streamNamespace(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if ns := requestNamespace(ss.Context()); ns != "" {
		ss = &namespaceStream{ServerStream: ss, ns: ns}
	}
	return handler(srv, ss)
}

type namespaceStream struct {
	grpc.ServerStream
	ns string
}

func (s *namespaceStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if pm, ok := m.(proto.Message); ok {
		fillNamespace(pm.ProtoReflect(), s.ns)
	}
	return nil
}
