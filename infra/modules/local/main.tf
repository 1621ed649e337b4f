# A fleet of local processes started by Terraform itself: the event bus and,
# optionally, nginx in front of it, on loopback. Each process is a
# terraform_data resource whose create-time local-exec starts it detached
# (setsid, pid file) and whose destroy-time local-exec stops its process group.
#
# No shell parses a path or an argument: every local-exec gives its argv as
# the interpreter, and Terraform appends the command as the last argument, so
# the command is the argv's last word. A run directory named
# "a'$(touch x)" is a directory name, nothing more.

locals {
  workdir   = var.loadramp_workdir != "" ? var.loadramp_workdir : path.cwd
  state_raw = var.state_dir != "" ? var.state_dir : "${var.loadramp_run_dir != "" ? var.loadramp_run_dir : "${path.cwd}/.loadramp"}/${var.fleet}"
  state_dir = startswith(local.state_raw, "/") ? local.state_raw : "${local.workdir}/${local.state_raw}"
  # A bare name is looked up in PATH; a path is made absolute.
  eventbus = startswith(var.eventbus, "/") || !strcontains(var.eventbus, "/") ? var.eventbus : "${local.workdir}/${var.eventbus}"
  scripts  = abspath("${path.module}/scripts")
  bus_argv = concat([local.eventbus, "--listen", "127.0.0.1:${var.port}"], var.eventbus_args)
  nginx_on = var.nginx != ""

  start_bus   = concat(["${local.scripts}/start.sh", "eventbus", local.state_dir, tostring(var.port), tostring(var.ready_timeout)], local.bus_argv)
  start_nginx = ["${local.scripts}/nginx.sh", local.state_dir, tostring(var.nginx_port), tostring(var.port), tostring(var.ready_timeout), var.nginx]
}

resource "terraform_data" "eventbus" {
  # A change of arguments, port or state directory (a campaign's next variant
  # re-applying this workspace) replaces the resource: the destroy-time
  # provisioner stops the old process, the create-time one starts the new.
  triggers_replace = [local.bus_argv, local.state_dir]

  input = {
    pidfile = "${local.state_dir}/eventbus.pid"
    log     = "${local.state_dir}/eventbus.log"
    stop    = "${local.scripts}/stop.sh"
  }

  provisioner "local-exec" {
    interpreter = slice(local.start_bus, 0, length(local.start_bus) - 1)
    command     = local.start_bus[length(local.start_bus) - 1]
  }

  provisioner "local-exec" {
    when        = destroy
    interpreter = [self.input.stop]
    command     = self.input.pidfile
  }
}

resource "terraform_data" "nginx" {
  count = local.nginx_on ? 1 : 0

  triggers_replace = [var.nginx, var.nginx_port, var.port, local.state_dir]

  input = {
    pidfile = "${local.state_dir}/nginx.pid"
    stop    = "${local.scripts}/stop.sh"
  }

  provisioner "local-exec" {
    interpreter = slice(local.start_nginx, 0, length(local.start_nginx) - 1)
    command     = local.start_nginx[length(local.start_nginx) - 1]
  }

  provisioner "local-exec" {
    when        = destroy
    interpreter = [self.input.stop]
    command     = self.input.pidfile
  }

  depends_on = [terraform_data.eventbus]

  lifecycle {
    precondition {
      condition     = var.nginx_port > 0
      error_message = "nginx_port must be set (> 0) when nginx is set."
    }
  }
}
