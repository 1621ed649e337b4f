# A generator fleet of local "workers" built of terraform_data: each worker is
# a marker file in state_dir, created by local-exec and removed on destroy.
# The builtin engine runs inside loadramp; this module gives a Terraform
# generator fleet whose size (workers) loadramp grows when the generator
# saturates, on any machine.

terraform {
  required_version = ">= 1.5.0"
}

variable "workers" {
  description = "Number of generator workers (the plan's scale_var)."
  type        = number

  validation {
    condition     = var.workers >= 1 && floor(var.workers) == var.workers
    error_message = "workers must be a whole number >= 1."
  }
}

variable "state_dir" {
  description = "Where the worker marker files go (\"\" = <loadramp_run_dir>/generators)."
  type        = string
  default     = ""
}

variable "loadramp_run_dir" {
  description = "The run directory (set by loadramp)."
  type        = string
  default     = ""
}

locals {
  state_dir = var.state_dir != "" ? var.state_dir : "${var.loadramp_run_dir != "" ? var.loadramp_run_dir : abspath(path.cwd)}/generators"
}

resource "terraform_data" "worker" {
  count = var.workers

  input = {
    marker = "${local.state_dir}/worker-${count.index}"
  }

  # The paths reach the shell as environment variables, never as script
  # text: a quote or $(...) in a directory name stays part of the name.
  provisioner "local-exec" {
    command = "umask 077 && mkdir -p -- \"$STATE_DIR\" && printf '%s\\n' \"$INDEX\" > \"$MARKER\""
    environment = {
      STATE_DIR = local.state_dir
      MARKER    = self.input.marker
      INDEX     = count.index
    }
  }

  provisioner "local-exec" {
    when    = destroy
    command = "rm -f -- \"$MARKER\""
    environment = {
      MARKER = self.input.marker
    }
  }
}

output "workers" {
  description = "Marker files of the workers, one per worker."
  value       = [for w in terraform_data.worker : w.output.marker]
}

output "size" {
  description = "Number of workers."
  value       = length(terraform_data.worker)
}
