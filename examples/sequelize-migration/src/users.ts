// The app's data layer: the same code before and after the takeover. Only the model
// definition it is given changes (before/user-model.ts → after/user-model.ts).
import type { Model, ModelStatic } from "sequelize";

export interface User {
  id: string;
  name: string;
  email: string | null;
  ssn: string | null;
}

export interface UserModel extends Model<User, Omit<User, "id"> & { id?: string }>, User {}

export interface UserStore {
  create(user: Omit<User, "id">): Promise<string>;
  get(id: string): Promise<User | null>;
  changeEmail(id: string, email: string): Promise<void>;
}

export function userStore(Users: ModelStatic<UserModel>): UserStore {
  return {
    async create(user) {
      return (await Users.create(user)).id;
    },
    async get(id) {
      const user = await Users.findByPk(id);
      return user && { id: user.id, name: user.name, email: user.email, ssn: user.ssn };
    },
    async changeEmail(id, email) {
      const user = await Users.findByPk(id);
      if (!user) throw new Error(`no user ${id}`);
      await user.update({ email });
    },
  };
}
