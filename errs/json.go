package errs

import (
	"encoding/json"
	"fmt"
)

// jsonError is the JSON shape of an *Error, shared by every transport that
// carries errors in a body: {"code":"not_found","message":"...","details":[...]}.
type jsonError struct {
	Code     Code              `json:"code"`
	Message  string            `json:"message,omitempty"`
	Reason   string            `json:"reason,omitempty"`
	Domain   string            `json:"domain,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
	Details  []Detail          `json:"details,omitempty"`
}

// MarshalJSON encodes e as {"code":…,"message":…,"reason":…,"domain":…,
// "metadata":{…},"details":[…]}, leaving out what is empty. The cause is
// never encoded.
func (e *Error) MarshalJSON() ([]byte, error) {
	return json.Marshal(jsonError{Code: e.code, Message: e.message, Reason: e.reason, Domain: e.domain, Metadata: e.metadata, Details: e.details})
}

// UnmarshalJSON decodes the form written by MarshalJSON. A missing or
// unknown code is an error.
func (e *Error) UnmarshalJSON(b []byte) error {
	var j jsonError
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	if !j.Code.Valid() {
		return fmt.Errorf("errs: error body has no valid code")
	}
	*e = Error{code: j.Code, message: j.Message, reason: j.Reason, domain: j.Domain, metadata: j.Metadata, details: j.Details}
	return nil
}
