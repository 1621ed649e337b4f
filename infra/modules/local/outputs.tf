output "endpoint" {
  description = "Where load goes: nginx when it runs, else the event bus."
  value       = local.nginx_on ? "http://127.0.0.1:${var.nginx_port}" : "http://127.0.0.1:${var.port}"
  depends_on  = [terraform_data.eventbus, terraform_data.nginx]
}

output "bus_endpoint" {
  description = "The event bus itself."
  value       = "http://127.0.0.1:${var.port}"
  depends_on  = [terraform_data.eventbus]
}

output "state_dir" {
  description = "Directory of the pid files and process logs."
  value       = local.state_dir
}

output "eventbus_log" {
  description = "The event bus's stdout and stderr, for log signature scanning."
  value       = terraform_data.eventbus.output.log
}

output "nginx_error_log" {
  description = "nginx's error log (\"\" without nginx)."
  value       = local.nginx_on ? "${local.state_dir}/nginx-error.log" : ""
}
