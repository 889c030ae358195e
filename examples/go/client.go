package main

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// Identity is who calls: sent as gRPC metadata, as the gateway sends its HTTP headers
// (docs/approvals.md "Identity and authorisation"). Empty fields are not sent.
type Identity struct {
	APIKey    string // "authorization: Bearer <key>" (SWITCHBOARD_APPROVAL_DECIDERS set)
	Tenant    string // x-switchboard-tenant (trusted mode)
	Principal string // x-switchboard-principal (trusted mode)
}

func (id Identity) outgoing(ctx context.Context) context.Context {
	pairs := []string{}
	if id.APIKey != "" {
		pairs = append(pairs, "authorization", "Bearer "+id.APIKey)
	}
	if id.Tenant != "" {
		pairs = append(pairs, "x-switchboard-tenant", id.Tenant)
	}
	if id.Principal != "" {
		pairs = append(pairs, "x-switchboard-principal", id.Principal)
	}
	if len(pairs) == 0 {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, pairs...)
}

// dial opens a plaintext channel to target (host:port); it connects lazily, on the first call.
func dial(target string) (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("cannot use %q as a gRPC address: %w", target, err)
	}
	return conn, nil
}
