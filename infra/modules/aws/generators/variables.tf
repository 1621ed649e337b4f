variable "vpc_id" {
  description = "VPC the fleet runs in (the target's)."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets the instances are spread over."
  type        = list(string)
}

variable "operator_cidr" {
  description = "IPv4 CIDR allowed to SSH and the Locust web API (where loadramp runs), e.g. 203.0.113.7/32. 0.0.0.0/0 (anyone) needs allow_any_operator = true."
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

variable "generator_security_group_id" {
  description = "The target module's generator_security_group_id output: the only source its load port accepts."
  type        = string
}

variable "ami" {
  description = "AMI of the instances (Debian or Ubuntu: user_data uses apt-get)."
  type        = string
}

variable "instance_type" {
  description = "Instance type of the generator hosts."
  type        = string
  default     = "c6i.large"
}

variable "workers" {
  description = "Number of Locust worker hosts (the plan's scale_var)."
  type        = number
  default     = 2

  validation {
    condition     = var.workers >= 1 && floor(var.workers) == var.workers
    error_message = "workers must be a whole number >= 1."
  }
}

variable "locustfile" {
  description = "Content of the locustfile the workers run (any text: it reaches the hosts gzipped and base64-encoded)."
  type        = string

  validation {
    condition     = trimspace(var.locustfile) != ""
    error_message = "locustfile must not be empty."
  }
}

variable "key_name" {
  description = "EC2 key pair for SSH (\"\" = none)."
  type        = string
  default     = ""
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
