output "master" {
  description = "Locust master web API (private address), for the locust engine."
  value       = "http://${aws_instance.master.private_ip}:8089"
}

output "addresses" {
  description = "Private addresses of the worker hosts."
  value       = aws_instance.worker[*].private_ip
}

output "instance_ids" {
  description = "Instance ids of the master and workers."
  value       = concat([aws_instance.master.id], aws_instance.worker[*].id)
}

output "size" {
  description = "Number of worker hosts."
  value       = length(aws_instance.worker)
}

output "agents" {
  description = "The worker hosts' agents (private addresses), for fleets.generators.agents.output: the builtin engine runs on them."
  value       = [for ip in aws_instance.worker[*].private_ip : "http://${ip}:${var.agent_port}"]
}
