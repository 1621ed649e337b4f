# Where the fleet runs, and who may reach it.

variable "vpc_id" {
  description = "VPC the fleet runs in."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets the instances are spread over (with load_balancer, at most one per availability zone: the load balancer spans them)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 1
    error_message = "subnet_ids must list at least one subnet."
  }
}

variable "operator_cidr" {
  description = "IPv4 CIDR of the host loadramp runs on (e.g. 203.0.113.7/32): the only source of the agent port, node_exporter and SSH, and of the load port with load_from_operator. 0.0.0.0/0 (anyone) needs allow_any_operator = true."
  type        = string

  validation {
    condition     = can(cidrnetmask(var.operator_cidr)) && try(cidrhost(var.operator_cidr, 0) == split("/", var.operator_cidr)[0], false)
    error_message = "operator_cidr must be an IPv4 network in CIDR notation, written with its network address: 203.0.113.7/32 for one host, 203.0.113.0/24 for a range."
  }
}

variable "allow_any_operator" {
  description = "Let operator_cidr be 0.0.0.0/0: the agent port, node_exporter and SSH open to the whole internet."
  type        = bool
  default     = false
}

variable "load_from_operator" {
  description = "Also admit operator_cidr on the load port (or the load balancer's), for a probe or the builtin engine running where loadramp runs; by default only the generators' security group may send load."
  type        = bool
  default     = false
}

# The hosts.

variable "ami" {
  description = "Image of the instances (\"\": the current image image_parameter names). Give your own image to run your service from it."
  type        = string
  default     = ""

  validation {
    condition     = var.ami == "" || can(regex("^ami-[0-9a-f]{8,17}$", var.ami))
    error_message = "ami must be an AMI id (ami-0123456789abcdef0), or \"\" to look the image up through image_parameter."
  }
}

variable "image_parameter" {
  description = "Public SSM parameter holding the current image when ami is \"\" (Debian 12 for x86_64; /aws/service/debian/release/12/latest/arm64 for Graviton types). Looked up once: a new image published mid-run or mid-campaign does not replace the hosts."
  type        = string
  default     = "/aws/service/debian/release/12/latest/amd64"

  validation {
    condition     = can(regex("^/[A-Za-z0-9_./-]+$", var.image_parameter))
    error_message = "image_parameter must be an SSM parameter name such as /aws/service/debian/release/12/latest/amd64."
  }
}

variable "instance_type" {
  description = "Instance type of the target hosts (vertical dimensioning: a campaign variant may change it)."
  type        = string
  default     = "c6i.large"
}

variable "instance_count" {
  description = "Number of target hosts (horizontal dimensioning: more than one wants load_balancer)."
  type        = number
  default     = 1

  validation {
    condition     = var.instance_count >= 1 && floor(var.instance_count) == var.instance_count
    error_message = "instance_count must be a whole number >= 1."
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

# The load balancer.

variable "load_balancer" {
  description = "Put a Network Load Balancer in front of the hosts: endpoint is then its address, load_balancer its ARN (CloudWatch's target.lb.* figures)."
  type        = bool
  default     = false
}

variable "load_balancer_internal" {
  description = "An internal load balancer (private addresses, reachable from the VPC); false makes it internet-facing (public subnets needed)."
  type        = bool
  default     = true
}

# What serves the load.

variable "load_port" {
  description = "Port load arrives on: nginx's, or the app's own without nginx."
  type        = number
  default     = 80

  validation {
    condition     = var.load_port >= 1 && var.load_port <= 65535 && floor(var.load_port) == var.load_port
    error_message = "load_port must be a whole number from 1 to 65535."
  }
}

variable "nginx" {
  description = "Run nginx on load_port in front of the app on app_port; false: the app serves load_port itself."
  type        = bool
  default     = true
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

variable "health_path" {
  description = "Path of the app's health endpoint: the target is ready when http://127.0.0.1:<load_port><health_path> answers 200-399 on every host, asked through the host's agent."
  type        = string
  default     = "/healthz"

  validation {
    condition     = can(regex("^/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*$", var.health_path))
    error_message = "health_path must be a URL path starting with / (no spaces, quotes or #)."
  }
}

variable "app_url" {
  description = "The bundled event bus: where user_data downloads its binary (an http(s) URL; \"\" for none). It runs as eventbus.service."
  type        = string
  default     = ""

  validation {
    condition     = var.app_url == "" || can(regex("^https?://[^[:space:][:cntrl:]]+$", var.app_url))
    error_message = "app_url must be an http:// or https:// URL without spaces or control characters, or \"\"."
  }
}

variable "app_sha256" {
  description = "SHA-256 of the file at app_url (64 hex digits, as sha256sum prints it): user_data refuses a download that does not match. Required with app_url."
  type        = string
  default     = ""

  validation {
    condition     = var.app_sha256 == "" || can(regex("^[0-9a-f]{64}$", var.app_sha256))
    error_message = "app_sha256 must be 64 lowercase hex digits (sha256sum's output)."
  }
}

variable "app_args" {
  description = "Extra arguments of the bundled event bus (e.g. [\"--capacity\", \"8000\"]), each letters, digits and . _ : / = , @ + - only."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.app_args : can(regex("^[A-Za-z0-9._:/=,@+-]+$", a))])
    error_message = "app_args: each argument must be letters, digits and . _ : / = , @ + - only (it is written into a systemd unit)."
  }
}

variable "app_user_data" {
  description = "Your service: a shell script run as root on every host after loadramp's agent is up (install and start your service under systemd, listening on app_port behind nginx or on load_port without). \"\": none. The whole user_data must stay under EC2's 16 KiB."
  type        = string
  default     = ""
}

variable "nofile" {
  description = "Open-file limit of the bundled event bus and nginx workers."
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

variable "node_exporter_url" {
  description = "node_exporter release tarball (\"\": no node_exporter)."
  type        = string
  default     = "https://github.com/prometheus/node_exporter/releases/download/v1.8.2/node_exporter-1.8.2.linux-amd64.tar.gz"

  validation {
    condition     = var.node_exporter_url == "" || can(regex("^https?://[^[:space:][:cntrl:]]+$", var.node_exporter_url))
    error_message = "node_exporter_url must be an http:// or https:// URL without spaces or control characters, or \"\"."
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

# loadramp's agent on every host.

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
