package protostruct

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/ferry-go/ferry/errs"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
)

// MarshalLock returns the lock file of fd: a google.protobuf.FileDescriptorSet
// holding fd first, then every file it imports, directly or not, in
// protojson (field names as protojson writes them, two-space indentation,
// a final newline). For the same schema the bytes are the same, so a
// committed lock changes in review exactly where the schema does.
// Source info is left out.
func MarshalLock(fd protoreflect.FileDescriptor) ([]byte, error) {
	set := &descriptorpb.FileDescriptorSet{}
	seen := map[string]bool{}
	var add func(f protoreflect.FileDescriptor)
	add = func(f protoreflect.FileDescriptor) {
		if seen[f.Path()] {
			return
		}
		seen[f.Path()] = true
		fdp := protodesc.ToFileDescriptorProto(f)
		fdp.SourceCodeInfo = nil
		set.File = append(set.File, fdp)
		for i := range f.Imports().Len() {
			add(f.Imports().Get(i).FileDescriptor)
		}
	}
	add(fd)
	raw, err := protojson.Marshal(set)
	if err != nil {
		return nil, errs.Newf(errs.Internal, "protostruct: encoding the lock of %s: %v", fd.Path(), err)
	}
	// protojson varies its whitespace on purpose; encoding/json's is fixed.
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return nil, errs.Newf(errs.Internal, "protostruct: encoding the lock of %s: %v", fd.Path(), err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// UnmarshalLock reads a lock file written by [MarshalLock] (or a
// FileDescriptorSet in the protobuf binary form, as protoc
// --descriptor_set_out --include_imports writes it) and returns its first
// file, linked against the others. Errors are *errs.Error with code
// InvalidArgument.
func UnmarshalLock(b []byte) (protoreflect.FileDescriptor, error) {
	set := &descriptorpb.FileDescriptorSet{}
	var err error
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
		err = protojson.Unmarshal(b, set)
	} else {
		err = proto.Unmarshal(b, set)
	}
	if err != nil {
		return nil, errs.Newf(errs.InvalidArgument, "protostruct: not a lock file (a FileDescriptorSet): %v", err)
	}
	if len(set.File) == 0 {
		return nil, errs.New(errs.InvalidArgument, "protostruct: the lock file holds no file")
	}
	files, err := protodesc.NewFiles(set)
	if err != nil {
		return nil, errs.Newf(errs.InvalidArgument, "protostruct: the lock file does not link: %v", err)
	}
	fd, err := files.FindFileByPath(set.File[0].GetName())
	if err != nil {
		return nil, errs.Newf(errs.InvalidArgument, "protostruct: the lock file: %v", fmt.Errorf("%s: %w", set.File[0].GetName(), err))
	}
	return fd, nil
}
