// Package deploy holds the deployment of the pipeline service: Terraform
// under terraform/ (one file per concern) and gcloud scripts under gcloud/
// (deploy.sh, and service-env.sh, which loads a deployed service's env for
// `pipeline doctor`). It has no Go code; its tests check the Terraform
// (syntax, `terraform fmt` formatting, one file per concern, IAM, the OIDC
// audience), that both deploy paths give the service the same variables,
// that docs/deploy.md lists every Terraform file, and service-env.sh against
// a stand-in gcloud.
package deploy
