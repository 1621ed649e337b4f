# Where the fleet runs, and who may reach it.

variable "vpc_id" {
  description = "VPC the fleet runs in (the target's)."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets the instances are spread over."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 1
    error_message = "subnet_ids must list at least one subnet."
  }
}

variable "operator_cidr" {
  description = "IPv4 CIDR of the host loadramp runs on (e.g. 203.0.113.7/32): the only source of the agent port, the Locust web API and SSH. 0.0.0.0/0 (anyone) needs allow_any_operator = true."
  type        = string

  validation {
    condition     = can(cidrnetmask(var.operator_cidr)) && try(cidrhost(var.operator_cidr, 0) == split("/", var.operator_cidr)[0], false)
    error_message = "operator_cidr must be an IPv4 network in CIDR notation, written with its network address: 203.0.113.7/32 for one host, 203.0.113.0/24 for a range."
  }
}

variable "allow_any_operator" {
  description = "Let operator_cidr be 0.0.0.0/0: the agent port, the Locust web API and SSH open to the whole internet."
  type        = bool
  default     = false
}

variable "generator_security_group_id" {
  description = "The target module's generator_security_group_id output: the only source its load port accepts."
  type        = string
}

# The hosts.

variable "ami" {
  description = "Image of the instances (\"\": the current image image_parameter names; Locust needs Debian's python3-locust)."
  type        = string
  default     = ""

  validation {
    condition     = var.ami == "" || can(regex("^ami-[0-9a-f]{8,17}$", var.ami))
    error_message = "ami must be an AMI id (ami-0123456789abcdef0), or \"\" to look the image up through image_parameter."
  }
}

variable "image_parameter" {
  description = "Public SSM parameter holding the current image when ami is \"\" (Debian 12 for x86_64; /aws/service/debian/release/12/latest/arm64 for Graviton types). Looked up once per workspace."
  type        = string
  default     = "/aws/service/debian/release/12/latest/amd64"

  validation {
    condition     = can(regex("^/[A-Za-z0-9_./-]+$", var.image_parameter))
    error_message = "image_parameter must be an SSM parameter name such as /aws/service/debian/release/12/latest/amd64."
  }
}

variable "instance_type" {
  description = "Instance type of the generator hosts."
  type        = string
  default     = "c6i.large"
}

variable "workers" {
  description = "Number of generator hosts (the plan's scale_var: growing the fleet changes only this). Each runs an agent (the builtin engine) and, with a locustfile, one Locust worker per CPU."
  type        = number
  default     = 2

  validation {
    condition     = var.workers >= 1 && floor(var.workers) == var.workers
    error_message = "workers must be a whole number >= 1."
  }
}

variable "root_volume_gb" {
  description = "Size of each host's root volume (gp3, encrypted), in GiB."
  type        = number
  default     = 16

  validation {
    condition     = var.root_volume_gb >= 8 && floor(var.root_volume_gb) == var.root_volume_gb
    error_message = "root_volume_gb must be a whole number >= 8."
  }
}

variable "key_name" {
  description = "EC2 key pair for SSH (\"\": none, and port 22 stays closed)."
  type        = string
  default     = ""
}

# Locust, for the locust engine.

variable "locustfile" {
  description = "Content of the locustfile (any text: it reaches the hosts gzipped and base64-encoded). \"\": no Locust (the builtin engine runs on the agents); else one more instance runs the Locust master, whose command does not depend on workers."
  type        = string
  default     = ""
}

# loadramp's agent on every generator host.

variable "agent_url" {
  description = "Where user_data downloads the loadramp binary the host's agent runs (loadramp agent, docs/agents.md): an http(s) URL. The same version as the loadramp that runs the plan."
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

variable "tags" {
  description = "Extra tags on every resource."
  type        = map(string)
  default     = {}
}

variable "loadramp_run_id" {
  description = "Run id, tagged loadramp:run-id (set by loadramp)."
  type        = string
}
