package proxy

import "strings"

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
