variable "eventbus" {
  description = "Path of the event bus binary; a relative path is relative to the directory loadramp runs in."
  type        = string
}

variable "port" {
  description = "Loopback port the event bus listens on (the plan allocates one with port \"bus\")."
  type        = number
}

variable "eventbus_args" {
  description = "Extra event bus flags, e.g. [\"--nofile\", \"1024\", \"--capacity\", \"4000\"]."
  type        = list(string)
  default     = []
}

variable "nginx" {
  description = "nginx binary to put in front of the event bus (\"\" = none)."
  type        = string
  default     = ""
}

variable "nginx_port" {
  description = "Loopback port nginx listens on; required when nginx is set."
  type        = number
  default     = 0
}

variable "state_dir" {
  description = "Where pid files, logs and nginx.conf go (\"\" = <loadramp_run_dir>/<fleet>); a relative path is relative to loadramp's directory."
  type        = string
  default     = ""
}

variable "fleet" {
  description = "Fleet name, for the default state_dir."
  type        = string
  default     = "target"
}

variable "ready_timeout" {
  description = "Seconds each process has to accept connections."
  type        = number
  default     = 30
}

# Set by loadramp's terraform provider when declared.
variable "loadramp_workdir" {
  description = "The directory loadramp runs in (set by loadramp)."
  type        = string
  default     = ""
}

variable "loadramp_run_dir" {
  description = "The run directory (set by loadramp)."
  type        = string
  default     = ""
}
