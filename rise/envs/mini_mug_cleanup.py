"""MiniMugCleanup: open a drawer, pick up a mug and put it into the drawer.

A small analogue of mimicgen's MugCleanup. A cabinet stands at the back of the table (-x) with
a tray-like drawer on a damped slide joint that opens towards +x; a bar handle stands off its
front plate. The gripper opens the drawer by lowering its closed fingers into the gap behind
the bar and pulling (a hook, so opening never depends on grip friction). The mug is a cup with
a handle on its +x side; it is grasped across its body, fingers clear of the handle.

Geometry (world frame, metres; the drawer joint q is how far the drawer is pulled out):
  cabinet  x in [-0.23, -0.05], |y| <= 0.09, z in [0, 0.10]; open on its +x face;
  drawer   tray interior x in [-0.20 + q, -0.047 + q], |y| <= 0.065, floor top at z = 0.02,
           1.5 cm walls; q in [0, 0.14]; at q = 0.12 about 12 cm of the tray is outside;
  mug      5 cm tall, 4 cm wide (collision box, drawn as a cylinder) plus a 2 cm handle.

Initial-state regions (mug x, y, yaw and drawer opening q):
  expert       mug in a 4 x 4 cm square at x ~ 0.1, y ~ -0.18, yaw within +-30 degrees,
               drawer closed;
  eval         the same square and closed drawer (the paper evaluates where demos start);
  drawer_open  the same mug square, drawer already pulled out by 11-13 cm;
  play         mug anywhere beside the cabinet with any yaw, drawer anywhere in its range.

Success: the mug rests in the drawer - its centre inside the tray interior (1 cm margin),
standing upright on the tray floor, nearly still, and released by the gripper. The drawer may
be open or closed.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from rise.envs.mini import (
    CLOSE,
    OBJECT_GEOM,
    OPEN,
    MiniEnv,
    Obs,
    Program,
    ScriptedController,
    Source,
    Style,
    fmt,
    quat_yaw,
    rot2d,
    wrap_angle,
    yaw_quat,
)

# Hidden from the cameras (the renderer draws geom groups 0-2): the mug's collision box.
HIDDEN = 'group="3"'


class MiniMugCleanup(MiniEnv):
    name = "mini_mug_cleanup"
    horizon = 250  # the expert needs ~90 steps (20 Hz); the rest is slack for policies
    object_joint = "mug"
    regions = ("expert", "play", "eval", "drawer_open")
    sources = {
        "expert": Source("expert", successes_only=True),
        "drawer_only": Source("expert", successes_only=False),
        "place_only": Source("drawer_open", successes_only=True),
    }

    # Cabinet (static) and drawer (slide joint along +x, origin at the cabinet's front face).
    CAB_BACK = -0.23
    CAB_FRONT = -0.05
    CAB_HALF_W = 0.09
    CAB_TOP = 0.10
    WALL = 0.01
    DRAWER_LEN = 0.16  # tray length (floor) behind the front plate
    TRAY_HALF_W = 0.075  # outer half-width of the tray walls
    FLOOR_TOP = 0.02
    TRAY_WALL_H = 0.015
    FRONT_GAP = 0.003  # front plate's clearance to the cabinet when closed
    FRONT_TOP = 0.065
    HANDLE_STANDOFF = 0.035  # gap between the front plate and the bar (the hook goes in it)
    HANDLE_HALF_W = 0.045
    HANDLE_Z = 0.05
    DRAWER_MAX = 0.14
    OPENED = 0.1  # the drawer counts as open from here (a mug fits in the exposed tray)

    # Mug: collision box (drawn as a cylinder) with a handle along its +x axis.
    MUG_HALF = 0.019
    MUG_HALF_H = 0.025
    MUG_RADIUS = 0.02  # drawn cylinder

    # (x, y, yaw, drawer q) boxes; play is two bands, one each side of the cabinet.
    REGIONS = {
        "expert": (
            np.array([0.08, -0.2, -np.pi / 6, 0.0]),
            np.array([0.12, -0.16, np.pi / 6, 0.0]),
        ),
        "drawer_open": (
            np.array([0.08, -0.2, -np.pi / 6, 0.11]),
            np.array([0.12, -0.16, np.pi / 6, 0.13]),
        ),
        "play": (np.array([-0.15, 0.15, -np.pi, 0.0]), np.array([0.18, 0.2, np.pi, DRAWER_MAX])),
    }
    REGIONS["eval"] = REGIONS["expert"]

    GRASP_DZ = 0.034  # eef above the mug's bottom when grasping: palm 4 mm over its rim
    HOVER_Z = 0.1  # open fingertips clear the mug, the drawer front and the handle
    CARRY_Z = 0.15  # a held mug clears the drawer front and tray walls
    HOOK_Z = 0.05  # eef height that puts the closed fingers level with the handle bar
    SUCCESS_MARGIN = 0.01
    SUCCESS_TILT = np.cos(np.radians(15))
    SUCCESS_SPEED = 0.05

    def __init__(self, cameras: bool = False, image_size: int = 84):
        super().__init__(cameras=cameras, image_size=image_size)
        m = self.model
        self._drawer_qadr = int(m.joint("drawer").qposadr[0])
        self._mug_dofadr = int(m.joint("mug").dofadr[0])
        self._mug_body = int(m.body("mug").id)
        self._gripper_geoms = {int(m.geom(g).id) for g in ("finger_left", "finger_right", "palm")}

    # ----------------------------------------------------------------- scene
    def objects_xml(self) -> str:
        return self.cabinet_xml() + "\n" + self.drawer_xml() + "\n" + self.mug_xml()

    def cabinet_xml(self) -> str:
        """Top, bottom, back and side walls; static and solid for the gripper and the mug."""
        b, f, w, t, top = self.CAB_BACK, self.CAB_FRONT, self.CAB_HALF_W, self.WALL, self.CAB_TOP
        cx, hx = (b + f) / 2, (f - b) / 2
        wood = f'type="box" rgba="0.45 0.3 0.2 1" friction="0.5 0.005 0.0001" {OBJECT_GEOM}'
        walls = [
            ("top", (hx, w, t / 2), (cx, 0, top - t / 2)),
            ("bottom", (hx, w, t / 2), (cx, 0, t / 2)),
            ("back", (t / 2, w, top / 2), (b + t / 2, 0, top / 2)),
            ("left", (hx, t / 2, top / 2), (cx, w - t / 2, top / 2)),
            ("right", (hx, t / 2, top / 2), (cx, -w + t / 2, top / 2)),
        ]
        return "\n".join(
            f'    <geom name="cabinet_{n}" size="{fmt(*s)}" pos="{fmt(*p)}" {wood}/>'
            for n, s, p in walls
        )

    def drawer_xml(self) -> str:
        """Tray with low walls, a front plate and a bar handle; damped and with friction loss,
        so it stays where the gripper leaves it. It clears the cabinet everywhere."""
        ln, hw, ft, wh, t = (
            self.DRAWER_LEN,
            self.TRAY_HALF_W,
            self.FLOOR_TOP,
            self.TRAY_WALL_H,
            self.WALL,
        )
        g, top = self.FRONT_GAP, self.FRONT_TOP
        floor_bot = self.WALL + 0.002
        front = g + t  # outer face of the front plate (drawer frame)
        bar = front + self.HANDLE_STANDOFF
        hb, hz = self.HANDLE_HALF_W, self.HANDLE_Z
        wood = f'type="box" rgba="0.6 0.42 0.28 1" friction="0.5 0.005 0.0001" {OBJECT_GEOM}'
        metal = f'type="box" rgba="0.75 0.75 0.8 1" friction="0.5 0.005 0.0001" {OBJECT_GEOM}'
        parts = [
            ("floor", (ln / 2, hw, (ft - floor_bot) / 2), (-ln / 2, 0, (ft + floor_bot) / 2), wood),
            ("front", (t / 2, self.CAB_HALF_W, (top - floor_bot) / 2),
             (g + t / 2, 0, (top + floor_bot) / 2), wood),
            ("wall_l", ((ln + g) / 2, t / 2, wh / 2),
             ((g - ln) / 2, hw - t / 2, ft + wh / 2), wood),
            ("wall_r", ((ln + g) / 2, t / 2, wh / 2),
             ((g - ln) / 2, t / 2 - hw, ft + wh / 2), wood),
            ("wall_b", (t / 2, hw, wh / 2), (-ln + t / 2, 0, ft + wh / 2), wood),
            ("bar", (0.005, hb, 0.006), (bar + 0.005, 0, hz), metal),
            ("post_l", (self.HANDLE_STANDOFF / 2, 0.005, 0.006),
             (front + self.HANDLE_STANDOFF / 2, hb - 0.005, hz), metal),
            ("post_r", (self.HANDLE_STANDOFF / 2, 0.005, 0.006),
             (front + self.HANDLE_STANDOFF / 2, 0.005 - hb, hz), metal),
        ]  # fmt: skip
        geoms = "\n".join(
            f'      <geom name="drawer_{n}" size="{fmt(*s)}" pos="{fmt(*p)}" {a}/>'
            for n, s, p, a in parts
        )
        return f"""    <body name="drawer" pos="{fmt(self.CAB_FRONT, 0, 0)}">
      <joint name="drawer" type="slide" axis="1 0 0" range="0 {fmt(self.DRAWER_MAX)}"
             damping="10" frictionloss="1.5" armature="0.05"/>
{geoms}
    </body>"""

    def mug_xml(self) -> str:
        """Free mug: a hidden collision box (flat faces give stable grasps and resting
        contacts), a drawn cylinder, and a D-shaped handle along the body's +x axis."""
        h, hh, r = self.MUG_HALF, self.MUG_HALF_H, self.MUG_RADIUS
        solid = f'type="box" density="500" friction="0.8 0.005 0.0001" {OBJECT_GEOM}'
        ceramic = 'rgba="0.9 0.9 0.95 1"'
        return f"""    <body name="mug" pos="0.1 -0.18 {fmt(hh)}">
      <freejoint name="mug"/>
      <geom name="mug_body" size="{fmt(h, h, hh)}" {solid} {HIDDEN} rgba="1 1 1 0.3"/>
      <geom name="mug_shell" type="cylinder" size="{fmt(r, hh)}" {ceramic} mass="0"
            contype="0" conaffinity="0"/>
      <geom name="mug_rim" type="cylinder" size="{fmt(r - 0.004, 0.0005)}" pos="0 0 {fmt(hh)}"
            rgba="0.35 0.25 0.2 1" mass="0" contype="0" conaffinity="0"/>
      <geom name="mug_arm_top" size="0.009 0.004 0.003" pos="{fmt(h + 0.008, 0, 0.013)}"
            {solid} {ceramic}/>
      <geom name="mug_arm_bottom" size="0.009 0.004 0.003" pos="{fmt(h + 0.008, 0, -0.013)}"
            {solid} {ceramic}/>
      <geom name="mug_grip" size="0.003 0.004 0.016" pos="{fmt(h + 0.017, 0, 0)}"
            {solid} {ceramic}/>
    </body>"""

    # ----------------------------------------------------------------- state and regions
    def object_obs(self) -> np.ndarray:
        """Mug pose (position + w-x-y-z quaternion) followed by the drawer opening q."""
        q = self.data.qpos
        return np.append(q[self._obj_qadr : self._obj_qadr + 7], q[self._drawer_qadr])

    def drawer_q(self) -> float:
        return float(self.data.qpos[self._drawer_qadr])

    def sample_init(self, region: str, rng: np.random.Generator) -> np.ndarray:
        """(mug x, y, yaw, drawer q) drawn uniformly from `region`; play mugs go either side."""
        if region not in self.REGIONS:
            raise ValueError(f"unknown region {region!r}; known regions: {self.regions}")
        low, high = self.REGIONS[region]
        init = rng.uniform(low, high)
        if region == "play" and rng.random() < 0.5:
            init[1] = -init[1]
        return init

    def place_objects(self, init: np.ndarray) -> None:
        x, y, yaw, q = init
        self.place_mug((x, y, self.MUG_HALF_H), yaw)
        self.set_drawer(q)

    def place_mug(self, pos, yaw: float) -> None:
        self.set_free_pose("mug", pos, yaw_quat(yaw))

    def set_drawer(self, q: float) -> None:
        """Teleport the drawer (at rest) - for resets and tests."""
        self.data.qpos[self._drawer_qadr] = q
        self.data.qvel[self.model.joint("drawer").dofadr[0]] = 0.0

    def tray_interior(self, q: float) -> tuple[np.ndarray, np.ndarray]:
        """World (x, y) box inside the tray walls when the drawer is out by q."""
        x0 = self.CAB_FRONT + q
        low = np.array([x0 - self.DRAWER_LEN + self.WALL, -self.TRAY_HALF_W + self.WALL])
        high = np.array([x0 + self.FRONT_GAP, self.TRAY_HALF_W - self.WALL])
        return low, high

    def gripper_touches_mug(self) -> bool:
        d = self.data
        for c in d.contact[: d.ncon]:
            g1, g2 = int(c.geom1), int(c.geom2)
            b1, b2 = self.model.geom_bodyid[g1], self.model.geom_bodyid[g2]
            if (g1 in self._gripper_geoms and b2 == self._mug_body) or (
                g2 in self._gripper_geoms and b1 == self._mug_body
            ):
                return True
        return False

    def success(self) -> bool:
        """Mug released and resting upright on the tray floor, its centre inside the tray."""
        o = self.object_obs()
        low, high = self.tray_interior(o[7])
        m = self.SUCCESS_MARGIN
        inside = bool(np.all(o[:2] > low + m) and np.all(o[:2] < high - m))
        on_floor = abs(o[2] - (self.FLOOR_TOP + self.MUG_HALF_H)) < 0.005
        w, x, y, _ = o[3:7]
        upright = 1 - 2 * (x * x + y * y) > self.SUCCESS_TILT  # z axis . world z
        v = self.data.qvel[self._mug_dofadr : self._mug_dofadr + 3]
        still = np.linalg.norm(v) < self.SUCCESS_SPEED
        return bool(inside and on_floor and upright and still and not self.gripper_touches_mug())

    # ----------------------------------------------------------------- scripted control
    @staticmethod
    def mug_pose(obs: Obs) -> tuple[np.ndarray, float]:
        o = obs["object"].astype(np.float64)
        return o[:3], quat_yaw(o[3:7])

    @staticmethod
    def drawer_obs(obs: Obs) -> float:
        return float(obs["object"][7])

    def hook_x(self, q: float) -> float:
        """EEF x in the middle of the gap between the drawer front and its handle bar."""
        return self.CAB_FRONT + q + self.FRONT_GAP + self.WALL + self.HANDLE_STANDOFF / 2

    def open_drawer(self, obs: Obs, style: Style, goal: float) -> Program:
        """Hook the closed fingers behind the handle bar, pull to `goal`, lift out."""

        def at_hook(z: float):
            return lambda o: (np.array([self.hook_x(self.drawer_obs(o)), 0.0, z]), 0.0)

        obs = yield from self.servo(obs, at_hook(self.HOVER_Z), CLOSE, style, max_steps=60)
        obs = yield from self.servo(
            obs, at_hook(self.HOOK_Z), CLOSE, style.slower(0.7), tol=0.003, max_steps=30
        )
        # The fingers' front face reaches the bar when the eef is 1 cm short of it.
        pull = np.array([self.hook_x(goal) + self.HANDLE_STANDOFF / 2 - 0.01, 0.0, self.HOOK_Z])
        obs = yield from self.servo(
            obs,
            lambda o: (pull + [0.005, 0, 0], 0.0),
            CLOSE,
            style.slower(0.6),
            until=lambda o: self.drawer_obs(o) >= goal - 0.003,
            max_steps=60,
        )
        # Step back off the bar so lifting does not drag on it.
        back = np.array([self.hook_x(self.drawer_obs(obs)), 0.0, self.HOOK_Z])
        obs = yield from self.servo(
            obs, lambda o: (back, 0.0), CLOSE, style, tol=0.004, max_steps=8
        )
        return (yield from self.rise_to(obs, self.HOVER_Z, CLOSE, style))

    def grasp_target(self, obs: Obs, z: float, offset=(0.0, 0.0)) -> tuple[np.ndarray, float]:
        """EEF pose across the mug body (fingers along the mug's y axis, clear of its handle);
        `offset` shifts it in the mug frame (for scripted misses). Yaw is the mug's mod pi."""
        c, psi = self.mug_pose(obs)
        xy = c[:2] + rot2d(psi) @ np.asarray(offset, dtype=np.float64)
        return np.array([xy[0], xy[1], z]), float(wrap_angle(2 * psi) / 2)

    def holding(self, obs: Obs) -> bool:
        """The mug is off its support and between the fingers (not just closed on air)."""
        return bool(
            obs["object"][2] > self.FLOOR_TOP + self.MUG_HALF_H + 0.02
            and obs["gripper_qpos"].min() > 0.01
        )

    def mug_bottom(self, obs: Obs) -> float:
        """Height of the mug's base (assuming it stands upright)."""
        return float(obs["object"][2]) - self.MUG_HALF_H

    def pick(self, obs: Obs, style: Style) -> Program:
        """Above the mug, down around its body, close, lift to carrying height."""
        obs = yield from self.servo(
            obs, lambda o: self.grasp_target(o, self.HOVER_Z), OPEN, style, max_steps=60
        )
        obs = yield from self.servo(
            obs,
            lambda o: self.grasp_target(o, self.mug_bottom(o) + self.GRASP_DZ),
            OPEN,
            style.slower(0.7),
            tol=0.003,
            max_steps=30,
        )
        obs = yield from self.hold(obs, CLOSE, 4)
        return (yield from self.rise_to(obs, self.CARRY_Z, CLOSE, style))

    def place_goal(self, obs: Obs, along: float) -> np.ndarray:
        """Mug centre goal in the exposed part of the tray (`along` in [0, 1] from the cabinet
        front to the drawer front), on the drawer's centre line."""
        q = self.drawer_obs(obs)
        inner_front = self.CAB_FRONT + q + self.FRONT_GAP
        # The handle points +x: keep it 1.5 cm clear of the front plate, the body clear of
        # the cabinet front.
        lo, hi = self.CAB_FRONT + self.MUG_HALF + 0.015, inner_front - 0.05
        return np.array([lo + along * max(hi - lo, 0.0), 0.0])

    def carry_target(self, obs: Obs, goal_xy, phi_goal: float, z: float):
        """EEF pose that puts the held mug's centre at `goal_xy` with the gripper at yaw
        `phi_goal`, from the observed grasp offset (so slip in the grasp is corrected)."""
        c, _ = self.mug_pose(obs)
        g, phi = obs["eef_pos"].astype(np.float64), self.eef_yaw(obs)
        xy = np.asarray(goal_xy) + rot2d(phi_goal - phi) @ (g[:2] - c[:2])
        return np.array([xy[0], xy[1], z]), phi_goal

    def place(self, obs: Obs, style: Style, along: float) -> Program:
        """Carry the held mug over the open tray (handle towards +x), lower it, let go."""
        _, psi = self.mug_pose(obs)
        # Turn the mug's handle to +x: the gripper turns by the same angle as the mug.
        phi_goal = self.eef_yaw(obs) - float(wrap_angle(psi))
        rest_z = self.FLOOR_TOP + self.MUG_HALF_H

        def over_goal(o: Obs) -> bool:
            c, yaw = self.mug_pose(o)
            close = np.linalg.norm(c[:2] - self.place_goal(o, along)) < 0.006
            return bool(close and abs(wrap_angle(yaw)) < 0.1)

        def lowered(o: Obs):
            pos, yaw = self.carry_target(o, self.place_goal(o, along), phi_goal, 0.0)
            pos[2] = o["eef_pos"][2] - (o["object"][2] - rest_z) - 0.003
            return pos, yaw

        obs = yield from self.servo(
            obs,
            lambda o: self.carry_target(o, self.place_goal(o, along), phi_goal, self.CARRY_Z),
            CLOSE,
            style,
            until=over_goal,
            max_steps=80,
        )
        obs = yield from self.servo(
            obs,
            lowered,
            CLOSE,
            style.slower(0.6),
            until=lambda o: o["object"][2] < rest_z + 0.002,
            max_steps=40,
        )
        obs = yield from self.hold(obs, OPEN, 3)
        return (yield from self.rise_to(obs, self.HOVER_Z + 0.03, OPEN, replace(style, noise=0.0)))

    def pick_and_place(self, obs: Obs, style: Style, along: float) -> Program:
        """Pick the mug (retrying a failed grasp twice from where it lies), place it."""
        for _ in range(3):
            obs = yield from self.pick(obs, style)
            if self.holding(obs):
                return (yield from self.place(obs, style, along))
            obs = yield from self.hold(obs, OPEN, 3)
        return (yield from self.rise_to(obs, self.HOVER_Z, OPEN, style))

    def expert_style(self, rng: np.random.Generator) -> Style:
        return Style(rng, speed=rng.uniform(0.6, 1.0), noise=rng.uniform(0.02, 0.06))

    def scripted_expert(self, rng: np.random.Generator) -> ScriptedController:
        """Open the drawer by its handle, pick the mug, put it into the drawer.

        Per-episode randomness: speed, action noise (~1 mm), how far the drawer is pulled and
        where in the tray the mug goes. A pull that leaves the drawer short of open is redone.
        """
        style = self.expert_style(rng)
        goal = rng.uniform(0.115, 0.13)
        along = rng.uniform(0.3, 0.7)

        def program(obs: Obs) -> Program:
            for _ in range(3):
                obs = yield from self.open_drawer(obs, style, goal)
                if self.drawer_obs(obs) >= self.OPENED:
                    break
            else:
                return obs
            return (yield from self.pick_and_place(obs, style, along))

        return ScriptedController(program, self.action_dim)

    def scripted_place_only(self, rng: np.random.Generator) -> ScriptedController:
        """The drawer starts open: pick the mug and put it in, as the expert's second half."""
        style = self.expert_style(rng)
        along = rng.uniform(0.3, 0.7)

        def program(obs: Obs) -> Program:
            return (yield from self.pick_and_place(obs, style, along))

        return ScriptedController(program, self.action_dim)

    def scripted_drawer_only(self, rng: np.random.Generator) -> ScriptedController:
        """Open the drawer like the expert, then botch the mug and give up.

        One of three failure modes per episode (then the gripper backs off to a random hover
        pose and waits), all of which leave the mug on the table beside the drawer:
          miss    close on air next to the mug body (offset away from its handle) or above it;
          drop    grasp and lift the mug, start towards the drawer, open the fingers over the
                  table while still beside the drawer;
          fumble  come down with the fingers already closed onto the mug's rim and shove it
                  sideways, away from the drawer: the mug is jostled or knocked over.
        """
        style = self.expert_style(rng)
        goal = rng.uniform(0.115, 0.13)
        mode = str(rng.choice(["miss", "drop", "fumble"]))

        def miss(obs: Obs) -> Program:
            if rng.random() < 0.6:  # beside the body, on the side away from the handle
                offset, dz = (-rng.uniform(0.035, 0.05), rng.uniform(-0.01, 0.01)), 0.0
            else:  # fingers close just above the rim
                offset, dz = (rng.uniform(-0.01, 0.01), 0.0), rng.uniform(0.035, 0.05)
            z = self.mug_bottom(obs) + self.GRASP_DZ + dz
            obs = yield from self.servo(
                obs, lambda o: self.grasp_target(o, self.HOVER_Z, offset), OPEN, style
            )
            obs = yield from self.servo(
                obs, lambda o: self.grasp_target(o, z, offset), OPEN, style.slower(0.7),
                tol=0.004, max_steps=30,
            )  # fmt: skip
            obs = yield from self.hold(obs, CLOSE, 4)
            return (yield from self.rise_to(obs, self.CARRY_Z, CLOSE, style))

        def drop(obs: Obs) -> Program:
            obs = yield from self.pick(obs, style)
            if not self.holding(obs):
                return obs
            # Head for the drawer but let go while the mug is still well beside it.
            c, _ = self.mug_pose(obs)
            goal_xy = np.array([c[0] - rng.uniform(0.0, 0.06), rng.uniform(-0.18, -0.14)])
            phi = self.eef_yaw(obs)
            obs = yield from self.servo(
                obs,
                lambda o: self.carry_target(o, goal_xy, phi, self.CARRY_Z),
                CLOSE,
                style,
                tol=0.01,
                max_steps=30,
            )
            if rng.random() < 0.5:  # or lower it part way first, a clumsier release
                obs = yield from self.rise_to(obs, rng.uniform(0.08, 0.12), CLOSE, style)
            return (yield from self.hold(obs, OPEN, 4))

        def fumble(obs: Obs) -> Program:
            # Onto the rim on the mug's +y side (off the handle), then shoved towards -y: away
            # from the drawer.
            offset = (rng.uniform(-0.025, 0.0), rng.uniform(0.012, 0.025))
            bottom = self.mug_bottom(obs)
            obs = yield from self.servo(
                obs, lambda o: self.grasp_target(o, self.HOVER_Z, offset), CLOSE, style
            )
            # Pressed down onto the rim (the fingers are closed), then shoved sideways.
            press = self.grasp_target(obs, bottom + self.GRASP_DZ, offset)
            obs = yield from self.servo(
                obs, lambda o: press, CLOSE, style.slower(0.7), tol=0.004, max_steps=20
            )
            _, psi = self.mug_pose(obs)
            shove = rot2d(psi) @ np.array([0.0, -rng.uniform(0.03, 0.06)])
            target = obs["eef_pos"].astype(np.float64) + [*shove, 0.0]
            obs = yield from self.servo(
                obs, lambda o: (target, press[1]), CLOSE, style.slower(0.5), tol=0.006,
                max_steps=20,
            )  # fmt: skip
            obs = yield from self.hold(obs, OPEN, 3)
            return (yield from self.rise_to(obs, self.CARRY_Z, OPEN, style))

        def program(obs: Obs) -> Program:
            for _ in range(3):
                obs = yield from self.open_drawer(obs, style, goal)
                if self.drawer_obs(obs) >= self.OPENED:
                    break
            obs = yield from {"miss": miss, "drop": drop, "fumble": fumble}[mode](obs)
            # Back off to a hover pose away from the drawer and wait.
            rest = np.array([rng.uniform(0.05, 0.15), rng.uniform(-0.2, -0.12), 0.15])
            phi = self.eef_yaw(obs)
            obs = yield from self.servo(
                obs, lambda o: (rest, phi), OPEN, style, tol=0.01, max_steps=40
            )
            return obs

        return ScriptedController(program, self.action_dim)
