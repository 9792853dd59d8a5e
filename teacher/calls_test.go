package teacher

import (
	"slices"
	"testing"
	"time"
)

func TestCalls(t *testing.T) {
	tests := []struct {
		name  string
		calls Calls
		extra []Check
		want  Calls
		bad   []string
	}{
		{"zero takes the defaults", Calls{}, nil, Calls{Concurrency: 4, Timeout: time.Minute, CacheDir: DefaultCacheDir()}, nil},
		{"set values stay", Calls{Concurrency: 2, Timeout: time.Second, CacheDir: "/c"}, nil, Calls{Concurrency: 2, Timeout: time.Second, CacheDir: "/c"}, nil},
		{"the caller's keys come first", Calls{Concurrency: 65, Timeout: -1}, []Check{{"a", true}, {"b", false}}, Calls{Concurrency: 65, Timeout: -1, CacheDir: DefaultCacheDir()}, []string{"a", "concurrency", "timeout"}},
		{"negative concurrency", Calls{Concurrency: -1}, nil, Calls{Concurrency: -1, Timeout: time.Minute, CacheDir: DefaultCacheDir()}, []string{"concurrency"}},
		{"the most in flight", Calls{Concurrency: MaxConcurrency}, nil, Calls{Concurrency: MaxConcurrency, Timeout: time.Minute, CacheDir: DefaultCacheDir()}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.calls.WithDefaults(time.Minute); got != tc.want {
				t.Errorf("WithDefaults = %+v, want %+v", got, tc.want)
			}
			if got := tc.calls.OutOfRange(tc.extra...); !slices.Equal(got, tc.bad) {
				t.Errorf("OutOfRange = %q, want %q", got, tc.bad)
			}
		})
	}
}
