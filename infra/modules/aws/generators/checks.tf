# Checks across variables, which a variable's own validation cannot make
# (Terraform 1.5). Built of terraform_data only, so they run without the
# AWS provider (the module's tests plan this file with variables.tf alone).

resource "terraform_data" "operator_cidr" {
  input = var.operator_cidr

  lifecycle {
    precondition {
      condition     = var.allow_any_operator || split("/", var.operator_cidr)[1] != "0"
      error_message = "operator_cidr ${var.operator_cidr} opens the agent port, SSH and the Locust web API to the whole internet: give the address loadramp runs from (e.g. 203.0.113.7/32), or set allow_any_operator = true if you mean it."
    }
  }
}

resource "terraform_data" "locustfile" {
  input = length(var.locustfile)

  lifecycle {
    precondition {
      condition     = var.locustfile == "" || trimspace(var.locustfile) != ""
      error_message = "locustfile is only white space: give the locustfile's content, or \"\" for no Locust."
    }
  }
}
