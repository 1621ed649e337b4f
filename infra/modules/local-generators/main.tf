# A generator fleet of local hosts, each a real `loadramp agent` on this
# machine: worker N is an agent on a free loopback port, started detached by
# a create-time local-exec and stopped by a destroy-time one. The agents
# output lists them, so the builtin engine runs on them (fleets.generators.
# agents: { output: agents }), and growing workers (the plan's scale_var)
# adds agents when a step is generator-fail. Built of terraform_data and
# local-exec only: no provider to download.
#
# The agents' token reaches them in their environment from the sensitive
# variable loadramp_agent_token, which loadramp sets through terraform's own
# environment (TF_VAR_loadramp_agent_token): it is in no file, argument or
# log.

terraform {
  required_version = ">= 1.5.0"
}

variable "workers" {
  description = "Number of generator agents (the plan's scale_var)."
  type        = number

  validation {
    condition     = var.workers >= 1 && floor(var.workers) == var.workers
    error_message = "workers must be a whole number >= 1."
  }
}

variable "loadramp" {
  description = "The loadramp binary the agents run; a relative path is relative to the directory loadramp runs in, a bare name is looked up in PATH."
  type        = string
  default     = "bin/loadramp"

  validation {
    condition     = trimspace(var.loadramp) != ""
    error_message = "loadramp must name the loadramp binary."
  }
}

variable "ready_timeout" {
  description = "Seconds each agent has to listen."
  type        = number
  default     = 30

  validation {
    condition     = var.ready_timeout >= 1 && floor(var.ready_timeout) == var.ready_timeout
    error_message = "ready_timeout must be a whole number of seconds >= 1."
  }
}

variable "state_dir" {
  description = "Where the agents' pid files, logs and URLs go (\"\" = <loadramp_run_dir>/generators)."
  type        = string
  default     = ""
}

# Set by loadramp when declared.
variable "loadramp_run_dir" {
  description = "The run directory (set by loadramp)."
  type        = string
  default     = ""
}

variable "loadramp_workdir" {
  description = "The directory loadramp runs in (set by loadramp)."
  type        = string
  default     = ""
}

variable "loadramp_agent_token" {
  description = "The agents' bearer token (set by loadramp through TF_VAR_loadramp_agent_token; \"\" = none, loopback only)."
  type        = string
  default     = ""
  sensitive   = true
}

locals {
  workdir   = var.loadramp_workdir != "" ? var.loadramp_workdir : abspath(path.cwd)
  state_dir = var.state_dir != "" ? var.state_dir : "${var.loadramp_run_dir != "" ? var.loadramp_run_dir : abspath(path.cwd)}/generators"
  # A bare name is looked up in PATH; a path is made absolute.
  loadramp = startswith(var.loadramp, "/") || !strcontains(var.loadramp, "/") ? var.loadramp : "${local.workdir}/${var.loadramp}"
  scripts  = abspath("${path.module}/scripts")
}

resource "terraform_data" "worker" {
  count = var.workers

  input = {
    dir  = "${local.state_dir}/worker-${count.index}"
    stop = "${local.scripts}/stop.sh"
  }

  # Every path and name reaches the script as an argument (the command is
  # the interpreter's last one), never as shell text.
  provisioner "local-exec" {
    interpreter = ["${local.scripts}/agent.sh", self.input.dir, "worker-${count.index}", tostring(var.ready_timeout)]
    command     = local.loadramp
    environment = {
      LOADRAMP_AGENT_TOKEN = var.loadramp_agent_token
    }
  }

  provisioner "local-exec" {
    when        = destroy
    interpreter = [self.input.stop]
    command     = "${self.input.dir}/agent.pid"
  }
}

output "agents" {
  description = "The agents, worker name to URL (read once each has said where it listens)."
  value       = { for i, w in terraform_data.worker : "worker-${i}" => try(trimspace(file("${w.output.dir}/url")), "") if w.id != "" }
}

output "size" {
  description = "Number of agents."
  value       = length(terraform_data.worker)
}
