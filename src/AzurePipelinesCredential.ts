export const name = "AzurePipelinesCredential"
