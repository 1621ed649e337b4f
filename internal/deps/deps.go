package main
import (
 _ "github.com/spf13/cobra"
 _ "github.com/spf13/viper"
 _ "github.com/rs/zerolog"
 _ "github.com/HdrHistogram/hdrhistogram-go"
 _ "github.com/valyala/fasthttp"
 _ "gopkg.in/yaml.v3"
 _ "golang.org/x/sys/unix"
 _ "github.com/agnivade/levenshtein"
 _ "golang.org/x/term"
)
func main(){}
