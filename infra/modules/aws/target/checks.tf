# Checks across variables, which a variable's own validation cannot make
# (Terraform 1.5). Built of terraform_data and check blocks only, so they run
# without the AWS provider (the module's tests plan this file with
# variables.tf alone).

resource "terraform_data" "operator_cidr" {
  input = var.operator_cidr

  lifecycle {
    precondition {
      condition     = var.allow_any_operator || split("/", var.operator_cidr)[1] != "0"
      error_message = "operator_cidr ${var.operator_cidr} opens the agent port, node_exporter and SSH to the whole internet: give the address loadramp runs from (e.g. 203.0.113.7/32), or set allow_any_operator = true if you mean it."
    }
  }
}

resource "terraform_data" "app" {
  input = var.app_url

  lifecycle {
    precondition {
      condition     = var.app_url != "" || var.app_user_data != "" || var.ami != ""
      error_message = "Nothing would serve the load: give app_url and app_sha256 (the bundled event bus), app_user_data (a script that installs your service), or ami (an image with your service in it)."
    }
    precondition {
      condition     = var.app_url == "" || var.app_sha256 != ""
      error_message = "app_url is set without app_sha256: user_data checks every download against its SHA-256 (sha256sum of the file)."
    }
    precondition {
      condition     = !var.nginx || var.app_port != var.load_port
      error_message = "app_port ${var.app_port} is load_port: nginx listens on load_port in front of the app, which needs a port of its own (or set nginx = false)."
    }
  }
}

check "horizontal_without_load_balancer" {
  assert {
    condition     = var.instance_count == 1 || var.load_balancer
    error_message = "instance_count is ${var.instance_count} without load_balancer: endpoint is the first host's address only, so the load reaches one host. Set load_balancer = true, or send load to the addresses output yourself."
  }
}
