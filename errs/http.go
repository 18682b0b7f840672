package errs

import "net/http"

// HTTPStatus returns the HTTP status that stands for c on the wire. The
// mapping follows the one used by grpc-gateway and Connect.
func HTTPStatus(c Code) int {
	switch c {
	case Canceled:
		return 499 // client closed request
	case InvalidArgument, FailedPrecondition, OutOfRange:
		return http.StatusBadRequest
	case DeadlineExceeded:
		return http.StatusGatewayTimeout
	case NotFound:
		return http.StatusNotFound
	case AlreadyExists, Aborted:
		return http.StatusConflict
	case PermissionDenied:
		return http.StatusForbidden
	case ResourceExhausted:
		return http.StatusTooManyRequests
	case Unimplemented:
		return http.StatusNotImplemented
	case Unavailable:
		return http.StatusServiceUnavailable
	case Unauthenticated:
		return http.StatusUnauthorized
	}
	return http.StatusInternalServerError
}

// FromHTTPStatus returns the code that best describes an HTTP status when
// the response carries no canonical code of its own (a proxy's error page,
// say). 2xx and 3xx statuses have no code and return Unknown.
func FromHTTPStatus(status int) Code {
	switch status {
	case http.StatusBadRequest, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity:
		return InvalidArgument
	case http.StatusUnauthorized:
		return Unauthenticated
	case http.StatusForbidden:
		return PermissionDenied
	case http.StatusNotFound:
		return NotFound
	case http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return Unimplemented
	case http.StatusRequestTimeout, http.StatusGatewayTimeout:
		return DeadlineExceeded
	case http.StatusConflict:
		return Aborted
	case http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
		return ResourceExhausted
	case 499:
		return Canceled
	case http.StatusBadGateway, http.StatusServiceUnavailable:
		return Unavailable
	case http.StatusInternalServerError:
		return Internal
	}
	return Unknown
}
