package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// EnvORTLib names the environment variable that overrides the ONNX Runtime
// library path.
const EnvORTLib = "PAW_ORT_LIB"

// ErrORTMissing is returned (wrapped) when no ONNX Runtime library is found.
var ErrORTMissing = errors.New("onnx runtime library not found")

// DefaultORTLibPath is where scripts/install-ort.sh (make ort) installs the
// library: $XDG_DATA_HOME/paw/onnxruntime, else ~/.local/share/paw/onnxruntime.
func DefaultORTLibPath() string {
	base := os.Getenv("XDG_DATA_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = "."
		}
		base = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(base, "paw", "onnxruntime", "libonnxruntime.so.1")
}

// resolveORTLib returns the library to load: $PAW_ORT_LIB, else the default
// install location. The error says how to install it.
func resolveORTLib() (string, error) {
	path, from := os.Getenv(EnvORTLib), EnvORTLib
	if path == "" {
		path, from = DefaultORTLibPath(), "default location"
	}
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("%w at %s (%s): install it with `make ort` (runs scripts/install-ort.sh, which fetches npm onnxruntime-node@1.30.0) or point %s at libonnxruntime.so", ErrORTMissing, path, from, EnvORTLib)
	}
	return path, nil
}

// The ONNX Runtime environment is process-wide by nature (the C library has
// one), so the Go side keeps it once, for the process's life.
var ortState struct {
	sync.Mutex
	lib string // the library initialized, for the process's life
	// encoders are shared by the encoder-v1 programs that run on them, so
	// that a reload or a second program does not load the encoder again.
	encoders map[encoderKey]*Encoder
}

// Env is a reference to the process's ONNX Runtime environment.
type Env struct {
	lib    string
	closed bool
}

// OpenEnv loads the ONNX Runtime library (with lib empty: the one already
// loaded, else resolveORTLib's) and initializes the environment once per
// process. Every Env must be closed; the environment itself then stays for
// the process's life (see Close).
func OpenEnv(lib string) (*Env, error) {
	ortState.Lock()
	defer ortState.Unlock()
	if lib == "" && ortState.lib != "" {
		lib = ortState.lib // "" asks for whichever library the process runs
	}
	if lib == "" {
		var err error
		if lib, err = resolveORTLib(); err != nil {
			return nil, err
		}
	}
	if ortState.lib != "" {
		if ortState.lib != lib {
			return nil, fmt.Errorf("onnx runtime already loaded from %s, cannot also load %s", ortState.lib, lib)
		}
		return &Env{lib: lib}, nil
	}
	ort.SetSharedLibraryPath(lib)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		if strings.Contains(err.Error(), "OrtGetApiBase") {
			// dlsym's reason is empty here: say what it means.
			return nil, fmt.Errorf("initialize onnx runtime from %s: not an ONNX Runtime library (it has no OrtGetApiBase); run make ort, or point --ort-lib at libonnxruntime.so", lib)
		}
		return nil, fmt.Errorf("initialize onnx runtime from %s: %w", lib, err)
	}
	ortState.lib = lib
	return &Env{lib: lib}, nil
}

// Library is the path of the loaded ONNX Runtime library.
func (e *Env) Library() string { return e.lib }

// Close releases this reference. The environment is not destroyed with
// the last one: destroying it unloads the library, and ONNX Runtime's
// unloading can deadlock, joining one of its threads while another waits
// for the dynamic loader's lock (pawdev quality once hung so at exit). The
// process's exit frees it anyway, and a plugin's library cannot be
// unloaded.
func (e *Env) Close() error {
	ortState.Lock()
	defer ortState.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	return nil
}

// Device is a parsed execution-provider choice: "cpu", "cuda" or "cuda:N".
type Device struct {
	Provider string // "cpu" or "cuda"
	ID       int
}

// String is the device as ParseDevice reads it: "cpu" or "cuda:N".
func (d Device) String() string {
	if d.Provider == "cuda" {
		return "cuda:" + strconv.Itoa(d.ID)
	}
	return d.Provider
}

// ParseDevice parses "cpu", "cuda" or "cuda:N". Empty means cpu.
func ParseDevice(s string) (Device, error) {
	switch {
	case s == "" || s == "cpu":
		return Device{Provider: "cpu"}, nil
	case s == "cuda":
		return Device{Provider: "cuda"}, nil
	case strings.HasPrefix(s, "cuda:"):
		n, err := strconv.Atoi(s[len("cuda:"):])
		if err != nil || n < 0 {
			return Device{}, fmt.Errorf("device %q: want cuda:N with N a GPU index", s)
		}
		return Device{Provider: "cuda", ID: n}, nil
	}
	return Device{}, fmt.Errorf("device %q: want cpu, cuda or cuda:N", s)
}

// sessionOptions builds ORT session options for dev. A provider the library
// lacks is an error naming both; paw never falls back to the CPU silently.
func (e *Env) sessionOptions(dev Device, threads int) (*ort.SessionOptions, error) {
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("session options: %w", err)
	}
	fail := func(err error) (*ort.SessionOptions, error) {
		opts.Destroy()
		return nil, err
	}
	if err := opts.SetIntraOpNumThreads(threads); err != nil {
		return fail(fmt.Errorf("set intra-op threads: %w", err))
	}
	if err := opts.SetInterOpNumThreads(1); err != nil {
		return fail(fmt.Errorf("set inter-op threads: %w", err))
	}
	if dev.Provider == "cuda" {
		cuda, err := ort.NewCUDAProviderOptions()
		if err != nil {
			return fail(fmt.Errorf("execution provider %s is not available in %s: %w", dev, e.lib, err))
		}
		defer cuda.Destroy()
		if err := cuda.Update(map[string]string{"device_id": strconv.Itoa(dev.ID)}); err != nil {
			return fail(fmt.Errorf("execution provider %s is not available in %s: %w", dev, e.lib, err))
		}
		if err := opts.AppendExecutionProviderCUDA(cuda); err != nil {
			return fail(fmt.Errorf("execution provider %s is not available in %s: %w", dev, e.lib, err))
		}
	}
	return opts, nil
}
