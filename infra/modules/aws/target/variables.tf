variable "vpc_id" {
  description = "VPC the fleet runs in."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets the instances are spread over."
  type        = list(string)
}

variable "operator_cidr" {
  description = "IPv4 CIDR allowed to SSH and node_exporter (where loadramp runs), e.g. 203.0.113.7/32. 0.0.0.0/0 (anyone) needs allow_any_operator = true."
  type        = string

  validation {
    condition     = can(cidrnetmask(var.operator_cidr)) && try(cidrhost(var.operator_cidr, 0) == split("/", var.operator_cidr)[0], false)
    error_message = "operator_cidr must be an IPv4 network in CIDR notation, written with its network address: 203.0.113.7/32 for one host, 203.0.113.0/24 for a range."
  }
}

variable "allow_any_operator" {
  description = "Let operator_cidr be 0.0.0.0/0: SSH and the operator ports open to the whole internet."
  type        = bool
  default     = false
}

variable "ami" {
  description = "AMI of the instances (Debian or Ubuntu: user_data uses apt-get)."
  type        = string
}

variable "instance_type" {
  description = "Instance type of the target hosts."
  type        = string
  default     = "c6i.large"
}

variable "instance_count" {
  description = "Number of target hosts."
  type        = number
  default     = 1

  validation {
    condition     = var.instance_count >= 1 && floor(var.instance_count) == var.instance_count
    error_message = "instance_count must be a whole number >= 1."
  }
}

variable "key_name" {
  description = "EC2 key pair for SSH (\"\" = none)."
  type        = string
  default     = ""
}

variable "load_port" {
  description = "Port nginx serves load on."
  type        = number
  default     = 80

  validation {
    condition     = var.load_port >= 1 && var.load_port <= 65535 && floor(var.load_port) == var.load_port
    error_message = "load_port must be a whole number from 1 to 65535."
  }
}

variable "app_port" {
  description = "Loopback port of the app behind nginx."
  type        = number
  default     = 8080

  validation {
    condition     = var.app_port >= 1 && var.app_port <= 65535 && floor(var.app_port) == var.app_port
    error_message = "app_port must be a whole number from 1 to 65535."
  }
}

variable "app_url" {
  description = "Where user_data downloads the app binary (the bundled event bus) from: an http(s) URL."
  type        = string

  validation {
    condition     = can(regex("^https?://[^[:space:][:cntrl:]]+$", var.app_url))
    error_message = "app_url must be an http:// or https:// URL without spaces or control characters."
  }
}

variable "app_sha256" {
  description = "SHA-256 of the file at app_url (64 hex digits, as sha256sum prints it): user_data refuses a download that does not match."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-f]{64}$", var.app_sha256))
    error_message = "app_sha256 must be 64 lowercase hex digits (sha256sum's output)."
  }
}

variable "node_exporter_url" {
  description = "node_exporter release tarball."
  type        = string
  default     = "https://github.com/prometheus/node_exporter/releases/download/v1.8.2/node_exporter-1.8.2.linux-amd64.tar.gz"

  validation {
    condition     = can(regex("^https?://[^[:space:][:cntrl:]]+$", var.node_exporter_url))
    error_message = "node_exporter_url must be an http:// or https:// URL without spaces or control characters."
  }
}

variable "node_exporter_sha256" {
  description = "SHA-256 of the tarball at node_exporter_url (the default is the 1.8.2 linux-amd64 release's, from its sha256sums.txt); change it with the URL."
  type        = string
  default     = "6809dd0b3ec45fd6e992c19071d6b5253aed3ead7bf0686885a51d85c6643c66"

  validation {
    condition     = can(regex("^[0-9a-f]{64}$", var.node_exporter_sha256))
    error_message = "node_exporter_sha256 must be 64 lowercase hex digits (sha256sum's output)."
  }
}

variable "nofile" {
  description = "Open-file limit of the app and nginx workers."
  type        = number
  default     = 65536

  validation {
    condition     = var.nofile >= 1 && floor(var.nofile) == var.nofile
    error_message = "nofile must be a whole number >= 1."
  }
}

variable "nginx_worker_connections" {
  description = "nginx worker_connections (a proxied connection holds two)."
  type        = number
  default     = 16384

  validation {
    condition     = var.nginx_worker_connections >= 1 && floor(var.nginx_worker_connections) == var.nginx_worker_connections
    error_message = "nginx_worker_connections must be a whole number >= 1."
  }
}

variable "tags" {
  description = "Extra tags on every resource."
  type        = map(string)
  default     = {}
}

variable "loadramp_run_id" {
  description = "Run id, tagged loadramp:run-id (set by loadramp)."
  type        = string
}

variable "agent_url" {
  description = "Where user_data downloads the loadramp binary the host's agent runs (loadramp agent, docs/agents.md): an http(s) URL."
  type        = string

  validation {
    condition     = can(regex("^https?://[^[:space:][:cntrl:]]+$", var.agent_url))
    error_message = "agent_url must be an http:// or https:// URL without spaces or control characters."
  }
}

variable "agent_sha256" {
  description = "SHA-256 of the file at agent_url (64 hex digits, as sha256sum prints it): user_data refuses a download that does not match."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-f]{64}$", var.agent_sha256))
    error_message = "agent_sha256 must be 64 lowercase hex digits (sha256sum's output)."
  }
}

variable "agent_port" {
  description = "Port the host's agent listens on, open to operator_cidr only."
  type        = number
  default     = 7070

  validation {
    condition     = var.agent_port >= 1 && var.agent_port <= 65535 && floor(var.agent_port) == var.agent_port
    error_message = "agent_port must be a whole number from 1 to 65535."
  }
}

variable "loadramp_agent_token" {
  description = "The agents' bearer token (set by loadramp: the agent_token configuration key, or a token of the run's own). An agent without one does not start on a host address."
  type        = string
  default     = ""
  sensitive   = true
}
