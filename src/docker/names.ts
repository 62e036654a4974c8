/** Docker's rule for secret names (swarm refuses others); local secrets and secret variables keep it too. */
export const SECRET_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
