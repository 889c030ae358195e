//go:build switchboard_daprd

// Package components is the component set of Switchboard's daprd.
//
// It is not compiled as part of this module. scripts/build_daprd.sh builds daprd from a scratch
// copy of the dapr module in which this file takes the place of cmd/daprd/components/zz_notag.go
// (the file built when neither the `stablecomponents` nor the `allcomponents` tag is set), with
// `-tags switchboard_daprd`. daprd's per-component registration files all need one of those two
// tags, so only what is registered below ends up in the binary: far fewer dependencies to
// download and compile than the full stable set, and a much smaller binary.
//
// To add a component, register it here (the component type in YAML is "<kind>.<name>") and run
// `scripts/build_daprd.sh --refresh-go-sum`, which adds its modules to go.mod and go.sum.
package components

import (
	nrsqlite "github.com/dapr/components-contrib/nameresolution/sqlite"
	pubsubinmemory "github.com/dapr/components-contrib/pubsub/in-memory"
	pubsubredis "github.com/dapr/components-contrib/pubsub/redis"
	secretenv "github.com/dapr/components-contrib/secretstores/local/env"
	secretfile "github.com/dapr/components-contrib/secretstores/local/file"
	stateinmemory "github.com/dapr/components-contrib/state/in-memory"
	statepgv1 "github.com/dapr/components-contrib/state/postgresql/v1"
	statepgv2 "github.com/dapr/components-contrib/state/postgresql/v2"
	stateredis "github.com/dapr/components-contrib/state/redis"
	statesqlite "github.com/dapr/components-contrib/state/sqlite"
	"github.com/dapr/dapr/pkg/components"
	nrloader "github.com/dapr/dapr/pkg/components/nameresolution"
	pubsubloader "github.com/dapr/dapr/pkg/components/pubsub"
	secretloader "github.com/dapr/dapr/pkg/components/secretstores"
	stateloader "github.com/dapr/dapr/pkg/components/state"
)

func init() {
	// State stores: state.redis (shared, tests), state.sqlite (single machine),
	// state.postgresql (documented option), state.in-memory (throwaway runs).
	stateloader.DefaultRegistry.RegisterComponent(stateredis.NewRedisStateStore, "redis")
	stateloader.DefaultRegistry.RegisterComponent(statesqlite.NewSQLiteStateStore, "sqlite", "sqlite3")
	stateloader.DefaultRegistry.RegisterComponent(stateinmemory.NewInMemoryStateStore, "in-memory")
	// state.postgresql keeps daprd's own versioning: v1 is the default, v2 is opt-in.
	postgres := components.Versioning{
		Preferred: components.VersionConstructor{Version: "v2", Constructor: statepgv2.NewPostgreSQLStateStore},
		Others:    []components.VersionConstructor{{Version: "v1", Constructor: statepgv1.NewPostgreSQLStateStore}},
		Default:   "v1",
	}
	stateloader.DefaultRegistry.RegisterComponentWithVersions("postgresql", postgres)
	stateloader.DefaultRegistry.RegisterComponentWithVersions("postgres", postgres)

	// Pub/sub: pubsub.redis (Redis Streams) and pubsub.in-memory (one process only).
	pubsubloader.DefaultRegistry.RegisterComponent(pubsubredis.NewRedisStreams, "redis")
	pubsubloader.DefaultRegistry.RegisterComponent(pubsubinmemory.New, "in-memory")

	// Secret stores for connection strings kept out of the YAML (secretKeyRef).
	secretloader.DefaultRegistry.RegisterComponent(secretenv.NewEnvSecretStore, "local.env")
	secretloader.DefaultRegistry.RegisterComponent(secretfile.NewLocalSecretStore, "local.file")

	// Name resolution (service invocation between sidecars): the SQLite resolver, which keeps
	// app id -> address in a file the sidecars of one machine share, selected by
	// dapr/config.yaml. mdns, daprd's standalone default, is left out on purpose: it announces
	// every sidecar by multicast on every network interface. Without a resolver daprd logs an
	// error and runs on; only service invocation is unavailable.
	nrloader.DefaultRegistry.RegisterComponent(nrsqlite.NewResolver, "sqlite")
}
