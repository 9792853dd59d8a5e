// Command out_paw is paw's Fluent Bit output plugin, built with
//
//	go build -buildmode=c-shared -o out_paw.so ./plugin/cmd/out_paw
//
// This file only adapts Fluent Bit's C callbacks to package plugin. The
// instance table is the one global: Fluent Bit holds an opaque context per
// output instance, and cgo rules forbid handing it a Go pointer.
package main

import (
	"C"
	"context"
	"log/slog"
	"os"
	"sync"
	"unsafe"

	"github.com/fluent/fluent-bit-go/output"

	"github.com/pawlogs/paw/plugin"
)

var instances = struct {
	sync.Mutex
	next int
	m    map[int]*plugin.Instance
}{m: map[int]*plugin.Instance{}}

//export FLBPluginRegister
func FLBPluginRegister(def unsafe.Pointer) int {
	return output.FLBPluginRegister(def, "paw", "paw: compiled fuzzy filters (Program-as-Weights)")
}

//export FLBPluginInit
func FLBPluginInit(p unsafe.Pointer) int {
	get := func(key string) string { return output.FLBPluginConfigKey(p, key) }
	cfg, err := plugin.ParseConfig(get)
	log := logger(cfg.LogLevel)
	if err != nil {
		log.Error("out_paw: invalid configuration", "err", err)
		return output.FLB_ERROR
	}
	in, err := plugin.New(cfg, plugin.Options{Stdout: os.Stdout, Logger: log})
	if err != nil {
		log.Error("out_paw: cannot start", "instance", cfg.Name(), "err", err)
		return output.FLB_ERROR
	}
	instances.Lock()
	instances.next++
	id := instances.next
	instances.m[id] = in
	instances.Unlock()
	output.FLBPluginSetContext(p, id)
	return output.FLB_OK
}

//export FLBPluginFlushCtx
func FLBPluginFlushCtx(ctx, data unsafe.Pointer, length C.int, tag *C.char) int {
	in := lookup(ctx)
	if in == nil {
		return output.FLB_ERROR
	}
	chunk := C.GoBytes(data, length)
	return int(in.Flush(context.Background(), C.GoString(tag), chunk))
}

//export FLBPluginExitCtx
func FLBPluginExitCtx(ctx unsafe.Pointer) int {
	id, ok := output.FLBPluginGetContext(ctx).(int)
	if !ok {
		return output.FLB_ERROR
	}
	instances.Lock()
	in := instances.m[id]
	delete(instances.m, id)
	instances.Unlock()
	if in != nil {
		if err := in.Close(); err != nil {
			slog.Error("out_paw: close", "err", err)
		}
	}
	return output.FLB_OK
}

//export FLBPluginExit
func FLBPluginExit() int {
	instances.Lock()
	open := instances.m
	instances.m = map[int]*plugin.Instance{}
	instances.Unlock()
	for _, in := range open {
		if err := in.Close(); err != nil {
			slog.Error("out_paw: close", "err", err)
		}
	}
	return output.FLB_OK
}

func lookup(ctx unsafe.Pointer) *plugin.Instance {
	id, ok := output.FLBPluginGetContext(ctx).(int)
	if !ok {
		return nil
	}
	instances.Lock()
	defer instances.Unlock()
	return instances.m[id]
}

func logger(level string) *slog.Logger {
	var lv slog.Level
	if lv.UnmarshalText([]byte(level)) != nil {
		lv = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv})).With("plugin", "out_paw")
}

func main() {}
