package grpc

import "strings"

// ServiceName returns the fully qualified proto service name for the Ferry
// service s: the proto package (s with '-' turned into '_') and the service
// (s in CamelCase), e.g. "greeter.Greeter" or "order_service.OrderService".
//
// A name holding a '.' is a fully qualified gRPC service name already
// ("grpc.health.v1.Health") and is returned as it is: Ferry service names
// have none, so this is how a Client calls any gRPC service.
func ServiceName(service string) string {
	if strings.Contains(service, ".") {
		return service
	}
	return protoPackage(service) + "." + protoService(service)
}

// MethodName returns the full gRPC method name of endpoint of service, e.g.
// "/greeter.Greeter/Hello", or for a fully qualified service name (one with
// a '.') "/grpc.health.v1.Health/Check".
func MethodName(service, endpoint string) string {
	return "/" + ServiceName(service) + "/" + endpoint
}

// filePath returns the path of the generated .proto file describing service.
func filePath(service string) string { return "ferry/" + service + ".proto" }

func protoPackage(s string) string { return strings.ReplaceAll(s, "-", "_") }

func protoService(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	up := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '-' || c == '_' {
			up = true
			continue
		}
		if up && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		up = false
		b.WriteByte(c)
	}
	return b.String()
}
