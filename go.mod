module github.com/pawlogs/paw

go 1.26.8

require (
	github.com/fsnotify/fsnotify v1.10.1
	github.com/goccy/go-yaml v1.19.2
	github.com/yalue/onnxruntime_go v1.27.0
	google.golang.org/protobuf v1.31.0
)

require golang.org/x/sys v0.13.0 // indirect
