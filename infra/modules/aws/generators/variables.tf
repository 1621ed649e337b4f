variable "vpc_id" {
  description = "VPC the fleet runs in (the target's)."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets the instances are spread over."
  type        = list(string)
}

variable "operator_cidr" {
  description = "CIDR allowed to SSH and the Locust web API (where loadramp runs)."
  type        = string
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
}

variable "locustfile" {
  description = "Content of the locustfile the workers run."
  type        = string
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
