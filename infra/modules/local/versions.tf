terraform {
  # terraform_data (built in) needs 1.4; strcontains needs 1.5. No provider is
  # downloaded: the module runs on any machine with the terraform binary.
  required_version = ">= 1.5.0"
}
