variable "vpc_id" {
  description = "VPC the fleet runs in."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets the instances are spread over."
  type        = list(string)
}

variable "operator_cidr" {
  description = "CIDR allowed to SSH and node_exporter (where loadramp runs), e.g. 203.0.113.7/32."
  type        = string
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
}

variable "app_port" {
  description = "Loopback port of the app behind nginx."
  type        = number
  default     = 8080
}

variable "app_url" {
  description = "Where user_data downloads the app binary (the bundled event bus) from."
  type        = string
}

variable "node_exporter_url" {
  description = "node_exporter release tarball."
  type        = string
  default     = "https://github.com/prometheus/node_exporter/releases/download/v1.8.2/node_exporter-1.8.2.linux-amd64.tar.gz"
}

variable "nofile" {
  description = "Open-file limit of the app and nginx workers."
  type        = number
  default     = 65536
}

variable "nginx_worker_connections" {
  description = "nginx worker_connections (a proxied connection holds two)."
  type        = number
  default     = 16384
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
