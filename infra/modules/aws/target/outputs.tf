output "endpoint" {
  description = "Where load goes: the load balancer's address with load_balancer, else the first host's (private addresses)."
  value       = var.load_balancer ? "http://${aws_lb.target[0].dns_name}:${var.load_port}" : "http://${aws_instance.target[0].private_ip}:${var.load_port}"
}

output "load_balancer" {
  description = "The Network Load Balancer's ARN (CloudWatch's target.lb.* figures), \"\" without one."
  value       = var.load_balancer ? aws_lb.target[0].arn : ""
}

output "health_url" {
  description = "The service's health URL as each host sees it; loadramp asks it through each host's agent before the first step."
  value       = "http://127.0.0.1:${var.load_port}${var.health_path}"
}

output "addresses" {
  description = "Private addresses of the target hosts."
  value       = aws_instance.target[*].private_ip
}

output "instance_ids" {
  description = "Instance ids (CloudWatch dimensions, readiness checks)."
  value       = aws_instance.target[*].id
}

output "agents" {
  description = "Each host's agent by instance id, for fleets.target.agents.output (and loadramp's readiness wait)."
  value       = { for i in aws_instance.target : i.id => "http://${i.private_ip}:${var.agent_port}" }
}

output "node_exporters" {
  description = "node_exporter URLs of the target hosts (empty without node_exporter)."
  value       = var.node_exporter_url == "" ? [] : [for ip in aws_instance.target[*].private_ip : "http://${ip}:9100/metrics"]
}

output "image" {
  description = "The image the hosts run."
  value       = terraform_data.image.output
}

output "size" {
  description = "Number of target hosts."
  value       = length(aws_instance.target)
}

output "generator_security_group_id" {
  description = "Security group the generators must join to reach the load port."
  value       = aws_security_group.generators.id
}
