// Package deploy holds the deployment of the pipeline service: Terraform
// under terraform/ (one file per concern) and a gcloud script under gcloud/.
// It has no Go code; its tests check the Terraform (syntax, `terraform fmt`
// formatting, one file per concern, the OIDC audience).
package deploy
